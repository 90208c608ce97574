"""Results waiting for a sender thread keep their claims: none is delivered twice.

The outbox lane takes many results at once, but HTTP and CouchDB deliveries
send on a few threads. A result that waits for a thread may wait longer than
its claim's lease; its claim is held meanwhile, or the lane (or another
process) would claim it again and deliver it a second time.

Real parts: the event service in this process, its LMDB queues, and a slow
HTTP sink on loopback. The constants are shortened so that the later results
wait well past their lease.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fixtures.servers import serving

from fless.config import EventSettings, FunctionSettings
from fless.core import Dispatcher, Platform, Store
from fless.events import _service
from fless.events._queue import EventQueues
from fless.events._service import INBOX, JOBS, LINKS, OUTBOX, EventService

# Two sender threads; each POST takes POST_S; the outbox's lease is
# 2 * SINK_TIMEOUT_S = 3 s. RESULTS results take RESULTS / 2 rounds of
# POST_S (5 s): the last eight wait for a thread well past their lease.
SENDING = 2
SINK_TIMEOUT_S = 1.5
POST_S = 0.5
RESULTS = 20
WAIT_S = 15.0


class _SlowSink:
    """An HTTP sink that takes ``POST_S`` per result and counts what it gets."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: Counter[str] = Counter()
        self.started: list[float] = []
        self.in_flight = 0
        self.peak = 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with sink.lock:
                    sink.in_flight += 1
                    sink.peak = max(sink.peak, sink.in_flight)
                    sink.started.append(time.monotonic())
                try:
                    time.sleep(POST_S)
                finally:
                    with sink.lock:
                        sink.in_flight -= 1
                        # Counted once answered: as the sender sees it.
                        sink.received[self.headers.get("X-Fless-Invocation", "")] += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True


def _service_for(data_dir: Path) -> EventService:
    platform = Platform(Store(data_dir / "store"), Dispatcher([]), FunctionSettings(), 1 << 20)
    return EventService(platform, EventSettings(), data_dir / "events")


def test_results_waiting_for_a_sender_thread_keep_their_claims_and_arrive_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_service, "SENDING_AT_ONCE", SENDING)
    monkeypatch.setattr(_service, "SINK_TIMEOUT_S", SINK_TIMEOUT_S)
    monkeypatch.setattr(_service, "LEASE_S", 1.5)
    monkeypatch.setattr(_service, "EXTEND_S", 0.3)
    monkeypatch.setattr(_service, "STOP_GRACE_S", 1.0)
    lease_s = 2 * SINK_TIMEOUT_S
    sink = _SlowSink()
    ids = [f"inv-{n:02d}" for n in range(RESULTS)]

    with serving(sink.server) as address:
        # Every result is in the outbox before the service starts: its lane
        # claims them all at once, in one lease.
        queues = EventQueues(
            tmp_path / "events" / "queues",
            [INBOX, OUTBOX],
            100,
            map_size=_service.QUEUES_MAP_BYTES,
            tables=[JOBS, LINKS],
        )
        entry = {"type": "http", "params": {"url": f"http://{address}/results"}}
        for invocation in ids:
            item = {"fn": ["m", "f"], "sink": entry, "result": b'{"ok":1}', "id": invocation}
            assert queues.put(OUTBOX, item)
        queues.close()

        service = _service_for(tmp_path)

        async def run() -> None:
            await service.start()
            try:
                deadline = time.monotonic() + WAIT_S
                while time.monotonic() < deadline:
                    with sink.lock:
                        twice = [i for i, n in sink.received.items() if n > 1]
                        every = set(sink.received) == set(ids)
                    if twice or (every and service.queues.depth(OUTBOX) == 0):
                        break
                    await asyncio.sleep(0.05)
                depth = service.queues.depth(OUTBOX)
            finally:
                await service.stop()
            with sink.lock:
                received = dict(sink.received)
            assert {i: n for i, n in received.items() if n > 1} == {}, "delivered twice"
            assert sorted(received) == ids
            assert depth == 0

        asyncio.run(run())

    # No more POSTs at once than sender threads; so the last results waited
    # for one well past their lease (and were not claimed again meanwhile).
    assert sink.peak <= SENDING
    assert len(sink.started) == RESULTS
    assert sink.started[-1] - sink.started[0] > lease_s + POST_S
    assert service.counts.delivered == RESULTS
    assert service.counts.sink_failures == 0
