"""Fault 2: an API process killed under load comes back, and later requests succeed."""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time
from pathlib import Path

from e2e.node import Node, wait_for
from fixtures.build import wat

CLIENTS = 8


def test_a_killed_api_process_under_load_is_replaced(tmp_path: Path) -> None:
    node = Node(tmp_path / "node", None, "--workers", "2").start()
    try:
        assert node.upload("_", "f", wat("fl_hello"))[0] == 201
        before = node.api_pids()
        assert len(before) == 2
        stop = threading.Event()
        results: list[tuple[float, int]] = []  # (when, status); status 0: no answer

        def load() -> None:
            while not stop.is_set():
                try:
                    status = node.invoke("_", "f", {"n": 1})[0]
                except (OSError, http.client.HTTPException):
                    status = 0  # no answer, or one cut off with its process
                results.append((time.monotonic(), status))

        threads = [threading.Thread(target=load) for _ in range(CLIENTS)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        os.kill(before[0], signal.SIGKILL)
        killed = time.monotonic()
        wait_for(
            lambda: len(node.api_pids()) == 2 and before[0] not in node.api_pids(),
            20,
            "a new API process",
        )
        replaced = time.monotonic()
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join()
        print(
            f"replaced {replaced - killed:.2f} s after the kill; "
            f"{sum(s != 200 for _, s in results)} of {len(results)} calls failed"
        )
        # served before, and every call after the replacement succeeded
        assert any(s == 200 for t, s in results if t < killed)
        after = [s for t, s in results if t > replaced + 0.5]
        assert after and all(s == 200 for s in after), after
        # the only failures are calls cut off with the process (no wrong answers)
        assert {s for _, s in results} <= {200, 0}
    finally:
        node.stop()
