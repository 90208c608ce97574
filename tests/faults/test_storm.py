"""A storm of long calls does not hold up quick ones, on real nodes.

64 concurrent calls of a function that loops to its 5 s timeout, on role
``all`` (one API process per CPU, each running functions) and on a core with
one remote worker. During the storm a warm quick function, a function
created during it (its create and its first call) and ``GET /v1/`` each
answer well within their own timeout. The latencies are printed (``-s``) and
kept in docs/RELIABILITY.md.
"""

from __future__ import annotations

import http.client
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import pytest
from cluster.lab import start_cluster
from e2e.node import Node
from fixtures.build import wat

STORM = 64
STORM_TIMEOUT_MS = 5000
# How long the quick calls are measured, from shortly after the storm starts.
MEASURE_S = 3.5
# Far under the storm's 5 s (and every function's own timeout), far over
# the milliseconds it takes on an idle machine: the machine is shared.
PROMPT_S = 1.5
# A create validates and compiles (in a child process), which takes 0.1-0.4 s
# on the idle test machine and several times that with the storm on both
# cores: still far from the storm's 5 s it would wait queued behind the
# long runs (9 s before the lanes).
CREATE_PROMPT_S = 3.0


def custom_section(code: bytes, tag: str) -> bytes:
    """``code`` with a custom section naming ``tag``: the same function, new code."""
    name = b"fless-test"
    payload = bytes([len(name)]) + name + tag.encode()
    assert len(payload) < 128
    return code + b"\x00" + bytes([len(payload)]) + payload


def timed(action: Callable[[], tuple[int, object]]) -> float:
    started = time.monotonic()
    status, body = action()
    took = time.monotonic() - started
    assert status in (200, 201), (status, body)
    return took


def storm_call(
    port: int, key: str, name: str = "loop", body: bytes = b'{"args": {}}'
) -> tuple[int, float]:
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", f"/v1/fn/_/{name}", body, {"Authorization": f"Bearer {key}"})
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic()
    except OSError:
        return 0, time.monotonic() - started
    finally:
        conn.close()


def weather_the_storm(api: Node) -> dict[str, list[float]]:
    """Runs the storm through ``api`` and measures the quick calls during it."""
    assert api.upload("_", "loop", wat("fl_loop"), {"timeout": STORM_TIMEOUT_MS})[0] == 201
    assert api.upload("_", "quick", wat("fl_hello"))[0] == 201
    for i in range(20):  # warm on every API process (the kernel spreads connections)
        assert api.invoke("_", "quick", {"i": i})[0] == 200
    latency: dict[str, list[float]] = {"warm": [], "create": [], "first call": [], "GET /v1/": []}
    with ThreadPoolExecutor(STORM) as pool:
        started = time.monotonic()
        storm = [pool.submit(storm_call, api.port, api.key) for _ in range(STORM)]
        time.sleep(0.5)  # every call of the storm is in
        new = 0
        while time.monotonic() - started < MEASURE_S:
            for _ in range(5):
                latency["warm"].append(timed(lambda: api.invoke("_", "quick", {"n": 1})))
                latency["GET /v1/"].append(timed(lambda: api.request("GET", "/v1/", auth=False)))
            new += 1
            name = f"new{new}"
            code = custom_section(wat("fl_hello"), f"{time.time_ns()}-{new}")
            latency["create"].append(timed(partial(api.upload, "_", name, code)))
            latency["first call"].append(timed(partial(api.invoke, "_", name, {"n": 1})))
        measured = time.monotonic()
        answers = [f.result() for f in storm]
    # it was a storm: every long call ran to its timeout, and they were still
    # being answered after the quick calls were measured
    assert [status for status, _ in answers] == [504] * STORM
    assert max(at for _, at in answers) > measured
    return latency


def assert_prompt(latency: dict[str, list[float]]) -> None:
    for what, values in latency.items():
        assert max(values) < (CREATE_PROMPT_S if what == "create" else PROMPT_S), (what, values)


def report(where: str, latency: dict[str, list[float]]) -> None:
    for what, values in latency.items():
        p50, most = statistics.median(values) * 1000, max(values) * 1000
        print(f"{where}: {what}: {len(values)} calls, p50 {p50:.1f} ms, max {most:.1f} ms")


@pytest.fixture
def role_all(tmp_path: Path) -> Iterator[Node]:
    node = Node(tmp_path / "node").start()
    try:
        yield node
    finally:
        node.stop()


def test_quick_calls_are_served_during_a_storm_on_role_all(role_all: Node) -> None:
    latency = weather_the_storm(role_all)
    report("role all", latency)
    assert_prompt(latency)


def test_quick_calls_are_served_during_a_storm_on_a_remote_worker(tmp_path: Path) -> None:
    # 16 GiB: the core reserves each call's memory on its worker while the
    # call is in flight, queued there or not, and the storm holds 64 x 64 MiB.
    with start_cluster(tmp_path, {"w1": 16384}) as cluster:
        latency = weather_the_storm(cluster.core)
    report("core + worker", latency)
    assert_prompt(latency)


def test_a_function_seen_quick_that_runs_long_on_every_thread_leaves_one_for_quick_ones(
    role_all: Node,
) -> None:
    # fl_loop_if_long answers short input at once and loops on long input.
    # Seen quick, then called long many times at once: the first calls on
    # each API process start together before any has run long, and took
    # every thread until their 5 s timeout before spare threads.
    api = role_all
    shifty = wat("fl_loop_if_long")
    assert api.upload("_", "shifty", shifty, {"timeout": STORM_TIMEOUT_MS})[0] == 201
    # It may sleep (imports poll_oneoff), so it never runs on the event loop:
    # it needs a thread.
    assert api.upload("_", "quick", wat("fl_hello_may_sleep"))[0] == 201
    for i in range(20):  # both seen quick on every API process
        assert api.invoke("_", "shifty", {"i": i})[0] == 200
        assert api.invoke("_", "quick", {"i": i})[0] == 200
    warm: list[float] = []
    with ThreadPoolExecutor(STORM) as pool:
        call = partial(storm_call, api.port, api.key, "shifty", b'{"args": {"run": "long please"}}')
        storm = [pool.submit(call) for _ in range(STORM)]
        time.sleep(0.5)  # every call of the storm is in
        while len(warm) < 10:
            warm.append(timed(lambda: api.invoke("_", "quick", {"n": 1})))
        answers = [f.result() for f in storm]
    assert [status for status, _ in answers] == [504] * STORM
    report("role all, seen quick", {"warm": warm})
    assert max(warm) < PROMPT_S, warm
