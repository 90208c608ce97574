"""An answer's head goes out with its body in one write, and nothing is held back."""

from __future__ import annotations

from typing import Any

from fless.node._http import _HeadWithBody

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recording:
    """A transport that records what it is asked to do."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def writelines(self, parts: Any) -> None:
        self.calls.append(("writelines", tuple(parts)))

    def close(self) -> None:
        self.calls.append(("close", None))

    def is_closing(self) -> bool:
        return False


def held(done: list[str] | None = None) -> tuple[_HeadWithBody, Recording]:
    transport, finished = Recording(), done if done is not None else []
    return _HeadWithBody(transport, lambda: finished.append("done")), transport  # type: ignore[arg-type]


def test_the_head_goes_with_the_first_body_part_and_the_rest_pass() -> None:
    sender, transport = held()
    sender.write(HEAD)
    assert transport.calls == []
    sender.write(b"{}")
    sender.write(b"more")
    assert transport.calls == [("writelines", (HEAD, b"{}")), ("write", b"more")]


def test_a_100_continue_is_not_held() -> None:
    sender, transport = held()
    sender.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert transport.calls == [("write", b"HTTP/1.1 100 Continue\r\n\r\n")]
    sender.write(HEAD)
    sender.write(b"{}")
    assert transport.calls[1:] == [("writelines", (HEAD, b"{}"))]


def test_a_head_without_a_body_goes_when_the_response_is_done() -> None:
    done: list[str] = []
    sender, transport = held(done)
    sender.write(HEAD)
    sender.response_done()
    assert transport.calls == [("write", HEAD)] and done == ["done"]
    sender.response_done()  # nothing twice
    assert transport.calls == [("write", HEAD)]


def test_closing_sends_what_is_held_first() -> None:
    sender, transport = held()
    sender.write(HEAD)
    sender.close()
    assert transport.calls == [("write", HEAD), ("close", None)]
    assert sender.is_closing() is False  # the rest is the transport's
