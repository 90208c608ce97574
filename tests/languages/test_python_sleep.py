"""A Python function's ``time.sleep`` ends at its timeout and frees its thread.

Python functions are components: ``time.sleep`` waits in WASI preview 2's
``wasi:io/poll`` inside Wasmtime, where epoch interruption cannot reach it.
On a node with two executor threads, two such sleepers used to hold both for
their whole sleep, and a quick call queued behind them got a 504.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.node import Node
from fixtures.build import wat
from fixtures.two_threads import quick_behind_stuck, timed_invoke, two_thread_node
from languages.langkit import build, deploy, project_with

LANG = "python"
# A build takes half a minute and an upload waits for the worker to compile
# a 20 MB component: minutes on a loaded 2-core machine.
pytestmark = pytest.mark.timeout(1200)

SLEEPER = """
import time


def main(args):
    time.sleep(args.get("sleep", 0))
    return {"slept": args.get("sleep", 0)}
"""
TIMEOUT_MS = 1000
SLACK_S = 1.0


@pytest.fixture(scope="module")
def two_threads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with two_thread_node(tmp_path_factory.mktemp("py-sleep") / "data") as node:
        yield node


def test_time_sleep_ends_at_the_timeout_and_frees_the_thread(
    two_threads: Node, tmp_path: Path
) -> None:
    code = build(project_with(tmp_path, LANG, "app.py", SLEEPER), LANG)
    deploy(two_threads, "py_sleep", code, timeout_ms=TIMEOUT_MS)
    # Imports poll_oneoff, so it runs on a thread, never on the event loop.
    deploy(two_threads, "quick", wat("fl_hello_may_sleep"), timeout_ms=5000)
    # A sleep within the timeout sleeps, and the function answers.
    status, body, elapsed = timed_invoke(two_threads, "py_sleep", {"sleep": 0.2})
    assert (status, body) == (200, {"data": {"slept": 0.2}})
    assert elapsed >= 0.2
    for _ in range(2):  # the second round runs only if the first freed the threads
        (status, body, quick_s), stuck = quick_behind_stuck(
            two_threads, "py_sleep", {"sleep": 10}, 0.3
        )
        assert (status, body) == (200, {"data": {"hello": {"n": 1}}})
        assert quick_s < TIMEOUT_MS / 1000 + SLACK_S, quick_s
        for status, body, elapsed in stuck:
            assert status == 504, body
            assert elapsed < TIMEOUT_MS / 1000 + SLACK_S, elapsed
        # The sleepers' thread is free at once: the same function runs again.
        status, body, elapsed = timed_invoke(two_threads, "py_sleep", {"sleep": 0})
        assert (status, body) == (200, {"data": {"slept": 0}})
        assert elapsed < SLACK_S
        print(
            f"time to 504 of time.sleep(10) with a {TIMEOUT_MS} ms timeout:",
            ", ".join(f"{s * 1000:.0f} ms" for _, _, s in stuck),
        )
