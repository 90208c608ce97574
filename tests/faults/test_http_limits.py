"""The HTTP server's own limits, tried on a real node over real sockets.

Each test sends what a client without any key could: a huge request head,
too many header fields, a head that never ends, more connections than the
bound. The node must refuse early, keep its memory, and go on serving.
``header_resident_growth`` is also what docs/SECURITY.md's figures come from:

    .venv/bin/python tests/faults/test_http_limits.py   # with and without the limits
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fless._units import MiB

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from e2e.node import Node
from fixtures.asgi import fixed_output
from fixtures.build import wat
from fixtures.wire import read_until_closed

MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 100
HEADER_TIMEOUT_S = 1.5
MAX_CONNECTIONS = 8
BODY_TIMEOUT_S = 3.0
BODY_BUDGET = 3 * MiB
LIMITS_ENV = {
    # One API process: the connection bound is per process.
    "FLESS_API_WORKERS": "1",
    "FLESS_API_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
    "FLESS_API_MAX_HEADERS": str(MAX_HEADERS),
    "FLESS_API_HEADER_TIMEOUT_MS": str(int(HEADER_TIMEOUT_S * 1000)),
    "FLESS_API_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    "FLESS_API_BODY_TIMEOUT_MS": str(int(BODY_TIMEOUT_S * 1000)),
    "FLESS_API_MAX_BODY_BYTES_IN_FLIGHT": str(BODY_BUDGET),
}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    started = Node(tmp_path_factory.mktemp("limits") / "n", env=LIMITS_ENV).start()
    try:
        yield started
    finally:
        started.stop()


def _status(node: Node) -> int:
    return node.request("GET", "/v1/", auth=False, timeout=10)[0]


def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def send_huge_header(port: int, size: int) -> tuple[int, bytes]:
    """Sends a request whose one header is ``size`` bytes; how much went out, and the answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sent = 0
    try:
        sock.sendall(b"GET /v1/ HTTP/1.1\r\nHost: x\r\nX-Big: ")
        chunk = b"a" * MiB
        while sent < size:
            sock.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent, read_until_closed(sock)


def header_resident_growth(node: Node, connections: int = 4, size: int = 48 * MiB) -> float:
    """MiB the API process's peak resident size grew while ``connections`` sent huge heads.

    The connections stay open until the peak is read: without limits the
    server holds each partial header for as long as its connection lives.
    """
    (pid,) = node.api_pids()
    before = _kib(pid, "VmHWM")
    socks = []
    for _ in range(connections):
        sock = socket.create_connection(("127.0.0.1", node.port), timeout=30)
        sock.sendall(b"GET /v1/ HTTP/1.1\r\nHost: x\r\nX-Big: ")
        socks.append(sock)
    chunk = b"a" * MiB
    for _ in range(size // MiB):
        for sock in socks:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(chunk)
    time.sleep(0.5)
    growth = (_kib(pid, "VmHWM") - before) / 1024
    for sock in socks:
        sock.close()
    return growth


def test_a_huge_header_is_refused_early_and_memory_stays_bounded(node: Node) -> None:
    sent, answer = send_huge_header(node.port, 48 * MiB)
    # Refused: a 431 read back, or the connection closed long before 48 MiB went.
    assert answer.startswith(b"HTTP/1.1 431") or sent < 48 * MiB, (sent, answer[:200])
    if answer:
        assert b"api.max_header_bytes" in answer
    # The figure of the issue: four such connections grew the node by 289 MiB.
    growth = header_resident_growth(node)
    assert growth < 32, f"the API process grew by {growth:.0f} MiB under huge headers"
    assert _status(node) == 200


def test_a_head_just_under_the_limit_is_served(node: Node) -> None:
    status, _ = node.request(
        "GET", "/v1/", auth=False, headers={"X-Pad": "a" * (MAX_HEADER_BYTES - 1024)}
    )
    assert status == 200


def test_too_many_header_fields_get_431_with_a_json_error(node: Node) -> None:
    sock = socket.create_connection(("127.0.0.1", node.port), timeout=10)
    fields = b"".join(b"X-H%d: v\r\n" % i for i in range(MAX_HEADERS + 1))
    sock.sendall(b"GET /v1/ HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    answer = read_until_closed(sock)
    sock.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431"), answer[:300]
    assert "api.max_headers" in json.loads(body)["errors"]["detail"]
    # As many as allowed are fine.
    allowed = {f"X-H{i}": "v" for i in range(MAX_HEADERS - 8)}
    assert node.request("GET", "/v1/", auth=False, headers=allowed)[0] == 200


@pytest.mark.parametrize("opening", [b"", b"GET /v1/ HTTP/1.1\r\nHost: x\r\n"])
def test_a_head_that_never_ends_is_closed_after_the_timeout(node: Node, opening: bytes) -> None:
    sock = socket.create_connection(("127.0.0.1", node.port), timeout=30)
    started = time.monotonic()
    sock.sendall(opening)
    closed_after = None
    # Slowloris: one more header byte every 0.2 s, never the blank line.
    sock.settimeout(0.2)
    while time.monotonic() - started < 10 * HEADER_TIMEOUT_S:
        try:
            if sock.recv(1024) == b"":
                closed_after = time.monotonic() - started
                break
        except TimeoutError:
            pass
        except ConnectionResetError:
            closed_after = time.monotonic() - started
            break
        try:
            if opening:  # else the connection idles: it never starts a request
                sock.sendall(b"X-Slow: a\r\n")
        except (BrokenPipeError, ConnectionResetError):
            closed_after = time.monotonic() - started
            break
    sock.close()
    assert closed_after is not None, "the server kept a never-ending head open"
    assert HEADER_TIMEOUT_S * 0.8 <= closed_after <= HEADER_TIMEOUT_S + 5, closed_after
    assert _status(node) == 200


def create_module_slowly(node: Node, pieces: list[bytes], pause_s: float) -> bytes:
    """POSTs /v1/fn: the whole head at once, then each of ``pieces`` of its body after ``pause_s``.

    Returns:
        All the node answered before closing.
    """
    body = b"".join(pieces)
    sock = socket.create_connection(("127.0.0.1", node.port), timeout=30)
    sock.sendall(
        b"POST /v1/fn HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + node.key.encode() + b"\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    for piece in pieces:
        time.sleep(pause_s)
        sock.sendall(piece)
    answer = read_until_closed(sock)
    sock.close()
    return answer


def test_a_slow_request_body_is_not_cut_by_the_head_timeout(node: Node) -> None:
    body = json.dumps({"module": {"name": "slow_body"}}).encode()
    answer = create_module_slowly(node, [body], HEADER_TIMEOUT_S + 0.5)
    assert answer.startswith(b"HTTP/1.1 201"), answer[:300]


@pytest.mark.parametrize("with_key", [True, False])
def test_a_body_that_stops_coming_is_closed_after_the_body_timeout(
    node: Node, with_key: bool
) -> None:
    # Half a body, then nothing: without a key the 401 came at once, but the
    # connection was held for good all the same (and with one, no answer
    # ever came); max_connections of these would shut the node to everyone.
    key = b"Authorization: Bearer " + node.key.encode() + b"\r\n" if with_key else b""
    sock = socket.create_connection(("127.0.0.1", node.port), timeout=30)
    started = time.monotonic()
    sock.sendall(
        b"POST /v1/fn HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + key
        + b'Content-Length: 100\r\n\r\n{"module": '
    )
    read_until_closed(sock, timeout=2 * BODY_TIMEOUT_S + HEADER_TIMEOUT_S + 10)
    closed_after = time.monotonic() - started
    sock.close()
    assert BODY_TIMEOUT_S * 0.8 <= closed_after <= 2 * BODY_TIMEOUT_S + HEADER_TIMEOUT_S + 5, (
        closed_after
    )
    assert _status(node) == 200


def test_a_body_that_keeps_coming_slowly_is_not_cut(node: Node) -> None:
    # One byte every half body timeout: slow, but never idle for a whole one.
    body = json.dumps({"module": {"name": "drip"}}).encode()
    answer = create_module_slowly(node, [body[:5], body[5:10], body[10:]], BODY_TIMEOUT_S / 2)
    assert answer.startswith(b"HTTP/1.1 201"), answer[:300]


def test_an_answer_the_client_does_not_read_is_dropped_after_the_body_timeout(
    node: Node,
) -> None:
    # A function answering 4 MiB, asked for by a client that reads nothing:
    # the node held the connection and the whole answer for good (40 such
    # clients held 212 MiB); now it drops them once the body timeout passes.
    output = b'"' + b"a" * (4 * MiB - 64) + b'"'
    status, body = node.upload("_", "big_answer", fixed_output(output))
    assert status == 201, body
    whole = len(b'{"data":') + len(output) + 1
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", node.port))
    sock.sendall(
        b"POST /v1/fn/_/big_answer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: Bearer " + node.key.encode() + b"\r\nContent-Length: 0\r\n\r\n"
    )
    time.sleep(2 * BODY_TIMEOUT_S + 2)
    got = read_until_closed(sock, timeout=30)
    sock.close()
    assert got.startswith(b"HTTP/1.1 200"), got[:200]
    # Cut: what the kernel buffers held, not the whole answer.
    assert len(got) < whole, "the node kept the unread answer until it was read"
    assert _status(node) == 200


def test_a_client_that_half_closes_after_its_request_gets_the_answer(node: Node) -> None:
    # shutdown(SHUT_WR) after a whole request (nc -N, some proxies): uvicorn
    # closed the connection at the EOF, so a call or an upload under way ran
    # (and changed the store) while its answer was lost.
    status, body = node.upload("_", "half_close", wat("fl_hello"))
    assert status == 201, body
    request = (
        b"POST /v1/fn/_/half_close HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + node.key.encode() + b"\r\nContent-Length: 16\r\n\r\n"
        b'{"args":{"a":1}}'
    )
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
            answer = read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        assert answer.endswith(b'{"data":{"hello":{"a":1}}}'), answer[-300:]


def _large_invoke_head(node: Node, size: int) -> bytes:
    return (
        b"POST /v1/fn/_/no_such_function HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nAuthorization: Bearer "
        + node.key.encode()
        + b"\r\nContent-Length: %d\r\n\r\n" % size
    )


def test_large_bodies_past_the_budget_get_503_and_small_ones_are_served(node: Node) -> None:
    # Each body is within max_request_bytes, but not their sum: a key could
    # hold max_connections of them (or 50 MiB uploads) in an API process.
    size = 2 * MiB
    holder = socket.create_connection(("127.0.0.1", node.port), timeout=30)
    holder.sendall(_large_invoke_head(node, size) + b" " * MiB)  # its body is under way
    time.sleep(0.5)
    head, body = _exchange(node, _large_invoke_head(node, size) + b" " * size)
    assert head.startswith(b"HTTP/1.1 503"), head
    assert b"retry-after: 1" in head.lower(), head
    assert "api.max_body_bytes_in_flight" in json.loads(body)["errors"]["detail"]
    # Small bodies never count.
    assert node.post_json("/v1/fn", {"module": {"name": "while_held"}})[0] == 201
    # The first one ends (its body whole): its bytes are free again.
    holder.sendall(b" " * (size - MiB - 2) + b"{}")
    assert read_until_closed(holder).startswith(b"HTTP/1.1 404")
    holder.close()
    head, _ = _exchange(node, _large_invoke_head(node, size) + b" " * (size - 2) + b"{}")
    assert head.startswith(b"HTTP/1.1 404"), head


def test_connections_past_the_bound_are_refused_and_others_served_after(node: Node) -> None:
    held = []
    try:
        # Keep-alive connections idle after a request: open, past their heads.
        for _ in range(MAX_CONNECTIONS):
            conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
            conn.request("GET", "/v1/")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            held.append(conn)
        extra = socket.create_connection(("127.0.0.1", node.port), timeout=10)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            extra.sendall(b"GET /v1/ HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = read_until_closed(extra)
        extra.close()
        assert answer == b"" or answer.startswith(b"HTTP/1.1 503"), answer[:300]
        if answer:
            assert b"api.max_connections" in answer
        # The connections held are still served.
        held[0].request("GET", "/v1/")
        response = held[0].getresponse()
        response.read()
        assert response.status == 200
    finally:
        for conn in held:
            conn.close()
    deadline = time.monotonic() + 10
    while True:
        try:
            if _status(node) == 200:
                break
        except (OSError, http.client.HTTPException):
            pass
        assert time.monotonic() < deadline, "the node did not serve again after the flood"
        time.sleep(0.1)


def _exchange(node: Node, request: bytes) -> tuple[bytes, bytes]:
    """``request`` sent as is on a new connection; the answer's head and body."""
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
        sock.sendall(request)
        reader = sock.makefile("rb")
        head = b""
        while not head.endswith(b"\r\n\r\n") and (line := reader.readline()):
            head += line
        length = next(
            (
                int(h.split(b":")[1])
                for h in head.lower().split(b"\r\n")
                if h.startswith(b"content-length:")
            ),
            0,
        )
        return head.strip(), reader.read(length)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"FOO /v1/ HTTP/1.1\r\nHost: x\r\n\r\n",  # a method httptools does not know
        b"GET /v1/fn/\xff HTTP/1.1\r\nHost: x\r\n\r\n",  # a raw byte that is not ASCII
        b"GET /v1/ HTTPS/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/ HTTP/1.1\nHost: x\n\n",  # bare LF
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 64,  # TLS to plain HTTP
        b"POST /v1/fn HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        b"POST /v1/fn HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST /v1/fn HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        "POST /v1/fn HTTP/1.1\r\nHost: x\r\nContent-Length: \u0663\r\n\r\n".encode(),
        b"POST /v1/fn HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n{}",
        b"POST /v1/fn HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST /v1/fn HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /v1/ HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
        b"GET /v1/ HTTP/1.1\r\nHost: x\r\n: empty name\r\n\r\n",
        b"GET /v1/ HTTP/1.1\r\nHost: x\r\nX-\xff: 1\r\n\r\n",
    ],
)
def test_a_request_the_parser_refuses_gets_400_with_a_json_error(
    node: Node, request_bytes: bytes
) -> None:
    head, body = _exchange(node, request_bytes)
    assert head.startswith(b"HTTP/1.1 400"), head
    assert b"content-type: application/json" in head.lower(), head
    assert "malformed HTTP request" in json.loads(body)["errors"]["detail"]


@pytest.mark.parametrize("version", [b"0.9", b"2.0", b"1.2", b"9.9"])
def test_an_http_version_other_than_1_x_gets_a_json_error(node: Node, version: bytes) -> None:
    # 0.9 and 2.0 reached the app, whose ASGI layer raised: a 500 in plain text.
    head, body = _exchange(node, b"GET /v1/ HTTP/" + version + b"\r\nHost: x\r\n\r\n")
    assert head.split(b" ")[1] in (b"400", b"505"), head
    assert json.loads(body)["errors"]["detail"]


def test_a_websocket_upgrade_is_answered_as_plain_http(node: Node) -> None:
    # fless has no WebSocket route: the request is served as HTTP, with its
    # JSON answer, and never leaves the bounded protocol (an empty 400 before).
    head, body = _exchange(
        node,
        b"GET /v1/fn HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    assert head.startswith(b"HTTP/1.1 401"), head
    assert json.loads(body)["errors"]["detail"]


def test_refused_requests_do_not_write_a_log_line_each(node: Node) -> None:
    # Without a key, each of these wrote a warning (two for an Upgrade).
    for _ in range(20):
        _exchange(node, b"FOO /v1/ HTTP/1.1\r\nHost: x\r\n\r\n")
        _exchange(
            node,
            b"GET /v1/ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
    log = node.log()
    # Once a minute each: at most two if a minute turned during the module.
    assert log.count("Invalid HTTP request received") <= 2, log[-2000:]
    assert log.count("Unsupported upgrade request") <= 2, log[-2000:]


def test_the_node_logged_no_traceback(node: Node) -> None:
    assert "Traceback" not in node.log(), node.log()[-3000:]


if __name__ == "__main__":
    import tempfile

    for label, env in [
        ("with the limits (defaults)", {"FLESS_API_WORKERS": "1"}),
        (
            "without (max_header_bytes 1 GiB)",
            {"FLESS_API_WORKERS": "1", "FLESS_API_MAX_HEADER_BYTES": str(1 << 30)},
        ),
    ]:
        measured = Node(Path(tempfile.mkdtemp()) / "n", env=env).start()
        try:
            grown = header_resident_growth(measured)
            print(f"{label}: 4 connections x 48 MiB header: peak RSS +{grown:.0f} MiB")
        finally:
            measured.stop()


def test_a_head_request_an_expect_and_pipelined_requests_get_whole_answers(node: Node) -> None:
    # The protocol holds each answer's head until its body goes (one write):
    # an answer without a body (HEAD), a 100 Continue, and answers to
    # pipelined requests must all still go out whole and in order.
    body = b'{"module": {"name": "pipelined"}}'
    key = node.key
    requests = (
        b"HEAD /ui/ HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /v1/ HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /v1/fn HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
        b"Connection: close\r\n\r\n" + body
    )
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
        sock.sendall(requests)
        got = read_until_closed(sock)
    heads = got.split(b"HTTP/1.1 ")[1:]
    assert [h[:3] for h in heads] == [b"200", b"200", b"201"], got
    assert b"up and running" in heads[1] and b'"pipelined"' in heads[2], got
    # Expect: 100-continue is answered before the body is sent.
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/fn HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\n"
            b"Connection: close\r\n\r\n"
        )
        sock.settimeout(10)
        assert sock.recv(4096).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"{}")
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 400"), answer
