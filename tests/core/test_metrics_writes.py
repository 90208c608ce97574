"""Counters and histograms of an API process are written to its metrics file in batches.

Each runs in a child process of its own, as an API process is: the
multiprocess directory is set before prometheus-client is imported, and
``enable`` chooses the value class once per process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# What another process reading the directory sees: the files alone.
_CHILD_HEAD = """
import asyncio, json, sys, threading
from prometheus_client import CollectorRegistry, multiprocess
from fless.core import _metrics

def on_file(name, labels=None):
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry.get_sample_value(name, labels or {}) or 0.0

def counted():
    labels = {"module": "_", "function": "f", "outcome": "ok"}
    return on_file("fless_invocations_total", labels)

metrics = _metrics.enable()
"""

_QUEUED_THEN_WRITTEN = """
async def main():
    loop = asyncio.get_running_loop()
    metrics.defer_writes(loop)
    seen = {}
    for _ in range(300):  # 900 updates: fewer than a batch
        metrics.count_invocation("_", "f", "ok")
        metrics.invoke_seconds.observe(0.0003)
    seen["queued"] = counted()
    await asyncio.sleep(_metrics.WRITE_DELAY_S * 5)
    seen["later"] = counted()
    # A burst that never lets the loop run its timers is written by the batch.
    for _ in range(2000):
        metrics.count_invocation("_", "f", "ok")
    seen["burst"] = counted()
    await asyncio.sleep(_metrics.WRITE_DELAY_S * 5)
    seen["observed"] = on_file("fless_invoke_seconds_count")
    seen["under_1ms"] = on_file("fless_invoke_seconds_bucket", {"le": "0.001"})
    # Threads add to the same series at once: none of their updates is lost.
    def add():
        for _ in range(20000):
            metrics.lookups_by["memory"].inc()
    threads = [threading.Thread(target=add) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # /metrics writes its own process's queue before it reads.
    text = _metrics.render()[0].decode()
    memory = 'fless_cache_lookups_total{result="memory"}'
    seen["rendered"] = [line for line in text.splitlines() if line.startswith(memory)]
    metrics.count_invocation("_", "f", "ok")
    metrics.defer_writes(None)  # as the platform stops
    seen["stopped"] = counted()
    metrics.count_invocation("_", "f", "ok")
    seen["after_stop"] = counted()
    print(json.dumps(seen))

asyncio.run(main())
"""

_RESTARTED = """
async def once():
    metrics.defer_writes(asyncio.get_running_loop())
    metrics.count_invocation("_", "f", "ok")  # arms a timer on this loop
    metrics.defer_writes(None)  # the platform stops before the timer fires

async def again():
    metrics.defer_writes(asyncio.get_running_loop())
    metrics.count_invocation("_", "f", "ok")
    await asyncio.sleep(_metrics.WRITE_DELAY_S * 5)
    return counted()

asyncio.run(once())
print(json.dumps(asyncio.run(again())))
"""

_FORKED = """
import os

async def main():
    metrics.defer_writes(asyncio.get_running_loop())
    for _ in range(5):
        metrics.count_invocation("_", "f", "ok")
    pid = os.fork()
    if pid == 0:
        _metrics._writes.write()  # as a /metrics in the child would
        os._exit(0)
    os.waitpid(pid, 0)
    await asyncio.sleep(_metrics.WRITE_DELAY_S * 5)
    return counted()

print(json.dumps(asyncio.run(main())))
"""

_FAILING_FILE = """
class Broken:
    def write(self, amount):
        raise OSError("no space left on device")

async def main():
    metrics.defer_writes(asyncio.get_running_loop())
    _metrics._writes.add(Broken(), 1.0)
    metrics.count_invocation("_", "f", "ok")
    _metrics._writes.write()  # as the timer or /metrics would: no exception
    return counted()

print(json.dumps(asyncio.run(main())))
"""

_NOTHING_DEFERS = """
metrics.count_invocation("_", "f", "ok")
metrics.members.labels("alive").set(3)
print(json.dumps([
    counted(),
    on_file("fless_members", {"state": "alive"}),
]))
"""


def run_child(tmp_path: Path, body: str) -> object:
    directory = tmp_path / "metrics"
    directory.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD_HEAD + body],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_updates_wait_for_their_batch_then_all_reach_the_file(tmp_path: Path) -> None:
    seen = run_child(tmp_path, _QUEUED_THEN_WRITTEN)
    assert isinstance(seen, dict)
    assert seen["queued"] == 0.0  # not yet: a batch is written after the delay
    assert seen["later"] == 300.0
    assert seen["observed"] == 300.0
    assert seen["under_1ms"] == 300.0
    # Of 2,000 more with no pause, the first 1,024 went to the file at once.
    assert seen["burst"] == 300.0 + 1024.0
    assert seen["rendered"] == ['fless_cache_lookups_total{result="memory"} 80000.0']
    assert seen["stopped"] == 2301.0
    assert seen["after_stop"] == 2302.0  # written at once once the deferral ended


def test_without_a_loop_every_update_is_written_at_once(tmp_path: Path) -> None:
    assert run_child(tmp_path, _NOTHING_DEFERS) == [1.0, 3.0]


def test_a_platform_started_again_on_a_new_loop_writes_its_updates(tmp_path: Path) -> None:
    # The first loop's timer never fired; the second deferral arms its own.
    assert run_child(tmp_path, _RESTARTED) == 2.0


def test_a_forked_child_does_not_write_its_parents_queue_again(tmp_path: Path) -> None:
    assert run_child(tmp_path, _FORKED) == 5.0


def test_a_series_that_cannot_be_written_loses_only_its_own_update(tmp_path: Path) -> None:
    assert run_child(tmp_path, _FAILING_FILE) == 1.0
