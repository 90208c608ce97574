"""On a real node with two executor threads, a call stuck in a host call holds
its thread no longer than its timeout: the next calls run.

Before fless bounded host calls, two functions sleeping in ``poll_oneoff``
(or waiting on a server that never answers) kept both threads for as long as
they asked, and a quick function queued behind them got a 504 without
running.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from e2e.node import Node
from fixtures.build import c, wat
from fixtures.stalling import stalling_server
from fixtures.two_threads import quick_behind_stuck, two_thread_node

SLEEPER_TIMEOUT_MS = 500
HTTP_TIMEOUT_MS = 1000
QUICK_TIMEOUT_MS = 5000
# Generous, for a shared machine: what it guards against is a thread held for
# the whole 10 s sleep (or 5 s http_timeout), or a quick call that never ran.
SLACK_S = 1.0


@pytest.fixture(scope="module")
def two_threads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with two_thread_node(tmp_path_factory.mktemp("host-deadline") / "data") as node:
        assert (
            node.upload("_", "sleeper", wat("wasi_sleep"), {"timeout": SLEEPER_TIMEOUT_MS})[0]
            == 201
        )
        # Imports poll_oneoff, so it always runs on an executor thread (never on
        # the event loop), but never calls it: a quick function that needs a thread.
        assert (
            node.upload("_", "quick", wat("fl_hello_may_sleep"), {"timeout": QUICK_TIMEOUT_MS})[0]
            == 201
        )
        assert node.invoke("_", "quick", {"warm": 1}) == (200, {"data": {"hello": {"warm": 1}}})
        yield node


def storm(node: Node, stuck: str, stuck_args: Any, bound_s: float) -> list[float]:
    """Two stuck calls, then a quick one while they hold both threads.

    Returns:
        The stuck calls' times to their 504, after checking the quick call.
    """
    # 0.15 s: both are in their host call by then
    (status, body, quick_s), results = quick_behind_stuck(node, stuck, stuck_args, 0.15)
    assert status == 200, body
    assert body == {"data": {"hello": {"n": 1}}}
    # It waited at most for the stuck calls' deadline, not for their sleep.
    assert quick_s < bound_s + SLACK_S, quick_s
    for status, body, _ in results:
        assert status == 504, body
        assert "timeout" in body["errors"]["detail"]
    times = [elapsed for _, _, elapsed in results]
    assert all(t < bound_s + SLACK_S for t in times), times
    return times


def test_sleepers_free_their_threads_at_their_timeout(two_threads: Node) -> None:
    bound = SLEEPER_TIMEOUT_MS / 1000
    first = storm(two_threads, "sleeper", {}, bound)
    # The threads are free again: a third and a fourth sleeper, and a quick call, run.
    second = storm(two_threads, "sleeper", {}, bound)
    print(
        f"time to 504 of a 10 s sleep with a {SLEEPER_TIMEOUT_MS} ms timeout:",
        ", ".join(f"{t * 1000:.0f} ms" for t in first + second),
    )


def test_components_waiting_on_the_clock_free_their_threads_at_their_timeout(
    two_threads: Node,
) -> None:
    # WASI preview 2: the wait is in wasi:io/poll, on a monotonic-clock pollable.
    assert (
        two_threads.upload(
            "_", "csleeper", wat("component_sleep"), {"timeout": SLEEPER_TIMEOUT_MS}
        )[0]
        == 201
    )
    bound = SLEEPER_TIMEOUT_MS / 1000
    times = storm(two_threads, "csleeper", {}, bound)
    times += storm(two_threads, "csleeper", {}, bound)
    print(
        f"time to 504 of a component's 10 s wait with a {SLEEPER_TIMEOUT_MS} ms timeout:",
        ", ".join(f"{t * 1000:.0f} ms" for t in times),
    )


def test_requests_to_a_stalling_server_free_their_threads_at_their_timeout(
    two_threads: Node,
) -> None:
    # functions.http_timeout is 5 s; the function's own timeout is shorter.
    with stalling_server() as silent, stalling_server(drip_s=0.1, for_s=20) as drip:
        for name, host in (("get_silent", silent), ("get_drip", drip)):
            assert (
                two_threads.upload(
                    "_",
                    name,
                    c("http_get"),
                    {"http_allow": [host], "timeout": HTTP_TIMEOUT_MS},
                )[0]
                == 201
            )
            url = {"url": f"http://{host}/"}
            times = storm(two_threads, name, url, HTTP_TIMEOUT_MS / 1000)
            times += storm(two_threads, name, url, HTTP_TIMEOUT_MS / 1000)
            print(
                f"time to 504 of {name} with a {HTTP_TIMEOUT_MS} ms timeout:",
                ", ".join(f"{t * 1000:.0f} ms" for t in times),
            )


def test_a_function_logging_empty_lines_keeps_max_log_lines(two_threads: Node) -> None:
    assert two_threads.upload("_", "empties", wat("fl_log_empty"), {"timeout": 30_000})[0] == 201
    assert two_threads.invoke("_", "empties", {}) == (200, {"data": {}})
    status, body = two_threads.request("GET", "/v1/fn/_/empties/logs")
    assert status == 200, body
    (entry,) = body["data"]
    # 100,000 empty lines logged; functions.max_log_lines (1000) kept.
    assert entry["logs"] == [""] * 1000
    assert entry["truncated"] is True
