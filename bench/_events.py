"""The events group: MQTT messages to results, and queued invocations, on ``--role all``.

One ``fless-node --role all`` and one Mosquitto on free loopback ports (the
test fixtures' ``Broker``, with ``TCP_NODELAY`` and Mosquitto's default
persistence saves: see ``_broker``). ``fl_hello`` is bound with an ``mqtt`` event on
``bench/in`` and an ``mqtt`` sink on ``bench/out``, so each message's result,
``{"hello": <message>}``, comes back through the broker. Measured:

- event to result: a paho client publishes one message at a time at QoS 1
  and times it until its result arrives on ``bench/out``, p50 and p99;
- its floor, alternated with it in batches so that drift falls on both: a
  bare MQTT echo through the same broker, a paho client in another process
  that republishes each message from ``floor/in`` to ``floor/out`` at QoS 1,
  timed by the same client;
- sustained events: N messages published as fast as ``mosquitto_pub -l``
  sends them, from the first publish to the last result, and how many
  results never came (there must be none);
- queued invocations: M ``POST ...?async=true`` from a few keep-alive
  connections, the 202s a second, and the invocations a second until the
  last one is ``ok`` (``GET /v1/invocations/{id}``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._model import BenchConfig, Figure, median, percentile  # puts tests/ on sys.path
from ._report import cpu_times, join_notes, key, missing, stolen_since

# isort: split
from e2e.node import Node, multipart, wait_for
from fixtures.build import wat
from fixtures.services import INSTALL_MOSQUITTO, MOSQUITTO, MOSQUITTO_PUB, Broker

GROUP = "events"
IN, OUT = "bench/in", "bench/out"
FLOOR_IN, FLOOR_OUT = "floor/in", "floor/out"
BOUND = "hello_mqtt"  # the function bound to the topics
QUEUED = "hello"  # the function invoked with ?async=true, with no sinks
FLOOR = "MQTT floor: bare echo through the same broker"
LATENCY = "event to result, role all, MQTT in and out"
ABOVE = "event to result above the floor"
ASYNC_THREADS = 4
# Messages per batch of the alternation, as bench/ab.py alternates calls.
BATCH = 50
# Sustained messages get numbers from here, so that no latency message is counted.
SUSTAINED_BASE = 1_000_000
WAIT_S = 10.0

# The floor's echo, in its own process as fless is: each message on floor/in
# republished to floor/out at QoS 1 from the callback.
_ECHO = """
import socket
import sys
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
client.on_connect = lambda c, *_: c.subscribe(sys.argv[3], qos=1)
client.on_subscribe = lambda *_: print("ready", flush=True)
client.on_message = lambda c, _, m: c.publish(sys.argv[4], m.payload, qos=1)
client.connect(sys.argv[1], int(sys.argv[2]))
client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
client.loop_forever()
"""


def sustained_name(count: int) -> str:
    """The sustained-rate figure's name."""
    return f"sustained MQTT events, {count:,} at QoS 1"


def sustained_floor_name(count: int) -> str:
    """The sustained floor's figure name."""
    return f"sustained MQTT floor: bare echo, {count:,} at QoS 1"


def delivered_name(count: int) -> str:
    """The figure of results that arrived in the sustained run."""
    return f"sustained MQTT events: results delivered of {count:,}"


def accepted_name(count: int) -> str:
    """The accepted-rate figure's name."""
    return f"async invocations accepted (202), {count:,} from {ASYNC_THREADS} connections"


def completed_name(count: int) -> str:
    """The completed-rate figure's name."""
    return f"async invocations completed (ok), {count:,}"


def measure(config: BenchConfig) -> list[Figure]:
    """Event-to-result latency and its floor, sustained events, queued invocations."""
    sustained = 300 if config.smoke else 5000
    queued = 100 if config.smoke else 2000
    if not (MOSQUITTO.exists() and MOSQUITTO_PUB.exists()):
        reason = f"mosquitto is not installed: {INSTALL_MOSQUITTO}"
        return [
            missing(GROUP, FLOOR, "ms", reason),
            missing(GROUP, LATENCY, "ms", reason, floor=key(GROUP, FLOOR)),
            missing(GROUP, ABOVE, "ms", reason),
            missing(GROUP, sustained_floor_name(sustained), "events/s", reason),
            missing(GROUP, sustained_name(sustained), "events/s", reason),
            missing(GROUP, delivered_name(sustained), "events", reason),
            missing(GROUP, accepted_name(queued), "req/s", reason),
            missing(GROUP, completed_name(queued), "req/s", reason),
        ]
    config.work_dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="events-", dir=config.work_dir))
    with _broker(root) as broker, _node(root) as node, _echo(broker), _Timer(broker) as timer:
        _create(node, broker)
        figures = _latency(config, timer)
        figures += _sustained(config, broker, timer, sustained)
        figures += _queued(config, node, queued)
    # Kept if the run failed, for the node's and the broker's logs.
    shutil.rmtree(root, ignore_errors=True)
    return figures


# -- the parts ----------------------------------------------------------------


@contextlib.contextmanager
def _broker(root: Path) -> Iterator[Broker]:
    broker = Broker(root / "mosquitto")
    with broker.config_path.open("a") as config:
        # Mosquitto leaves Nagle's algorithm on by default: a small packet then waits
        # for the ACK of the one before (up to 40 ms), which would be all one measured.
        config.write("set_tcp_nodelay true\n")
        # The tests' broker saves its persistence file after every change (so
        # that a broker killed mid-test loses little); that write paced every
        # client here to about 650 messages a second, fless and the bare echo
        # alike. A broker is deployed with Mosquitto's own default: persistent
        # sessions kept in memory, saved every 30 minutes and on exit.
        config.write("autosave_on_changes false\nautosave_interval 1800\n")
    try:
        yield broker.start()
    finally:
        broker.stop()


@contextlib.contextmanager
def _node(root: Path) -> Iterator[Node]:
    node = Node(root / "all").start()
    try:
        yield node
    finally:
        node.stop()


@contextlib.contextmanager
def _echo(broker: Broker) -> Iterator[None]:
    """The floor's echo process, once its subscription is acknowledged."""
    command = [sys.executable, "-c", _ECHO, broker.host, str(broker.port), FLOOR_IN, FLOOR_OUT]
    echo = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert echo.stdout is not None
        if echo.stdout.readline().strip() != "ready":
            raise RuntimeError("the MQTT echo did not subscribe")
        yield
    finally:
        echo.terminate()
        echo.wait(timeout=10)


def _create(node: Node, broker: Broker) -> None:
    """Uploads the bound hello and the plain one; returns once fless subscribed."""
    params = {"host": broker.host, "port": str(broker.port)}
    fields = [
        ("name", None, BOUND.encode()),
        ("code", "f.wasm", wat("fl_hello")),
        ("events", None, json.dumps([_mqtt(params, IN)]).encode()),
        ("sinks", None, json.dumps([_mqtt(params, OUT)]).encode()),
    ]
    body, ctype = multipart(fields)
    status, answer = node.request("POST", "/v1/fn/_", body, {"Content-Type": ctype})
    if status != 201:
        raise RuntimeError(f"creating {BOUND} with its bindings answered {status}: {answer}")
    status, answer = node.upload("_", QUEUED, wat("fl_hello"))
    if status != 201:
        raise RuntimeError(f"uploading {QUEUED} answered {status}: {answer}")
    # A message published before the subscription would be missed (a new session).
    wait_for(lambda: f"subscribed to {IN}" in node.log(), 30, f"fless subscribed to {IN}")


def _mqtt(params: dict[str, str], topic: str) -> dict[str, Any]:
    return {"type": "mqtt", "params": {**params, "topic": topic}}


class _Timer:
    """A paho client subscribed to both answer topics; each message's ``n`` and arrival."""

    def __init__(self, broker: Broker) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.arrived: queue.Queue[tuple[str, int, float]] = queue.Queue()
        self._subscribed = threading.Semaphore(0)
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self._client.on_message = self._on_message
        self._client.on_subscribe = lambda *_: self._subscribed.release()
        self._broker = broker

    def __enter__(self) -> _Timer:
        self._client.connect(self._broker.host, self._broker.port)
        sock = self._client.socket()
        assert isinstance(sock, socket.socket)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._client.loop_start()
        for topic in (OUT, FLOOR_OUT):
            self._client.subscribe(topic, qos=1)
            if not self._subscribed.acquire(timeout=10):
                raise RuntimeError(f"no SUBACK for {topic}")
        return self

    def __exit__(self, *_: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_message(self, _: Any, __: Any, message: Any) -> None:
        arrived = time.perf_counter()
        body = json.loads(message.payload)
        # fless's result is {"hello": <message>}; the echo's is the message.
        n = body["hello"]["n"] if message.topic == OUT else body["n"]
        self.arrived.put((message.topic, n, arrived))

    def publish(self, topic: str, n: int) -> None:
        """Publishes ``{"n": n, ...}`` at QoS 1."""
        payload = json.dumps({"n": n, "from": "fless bench"})
        self._client.publish(topic, payload, qos=1)

    def round_trip(self, topic: str, answer: str, n: int) -> float:
        """Publishes message ``n`` and waits for its answer; the seconds between."""
        start = time.perf_counter()
        self.publish(topic, n)
        deadline = start + WAIT_S
        while True:
            try:
                got, m, arrived = self.arrived.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                raise RuntimeError(
                    f"no answer on {answer} to message {n} within {WAIT_S} s"
                ) from None
            if (got, m) == (answer, n):  # anything else: a message delivered again
                return arrived - start


def _latency(config: BenchConfig, timer: _Timer) -> list[Figure]:
    """fless's event to result and the floor's echo, alternated in batches."""
    kinds = {LATENCY: (IN, OUT), FLOOR: (FLOOR_IN, FLOOR_OUT)}
    counter = iter(range(SUSTAINED_BASE))
    for topic, answer in kinds.values():
        for _ in range(min(200, config.requests)):
            timer.round_trip(topic, answer, next(counter))
    before = cpu_times()
    p50s: dict[str, list[float]] = {name: [] for name in kinds}
    p99s: dict[str, list[float]] = {name: [] for name in kinds}
    for _ in range(config.repeats):
        samples: dict[str, list[float]] = {name: [] for name in kinds}
        while len(samples[LATENCY]) < config.requests:
            batch = min(BATCH, config.requests - len(samples[LATENCY]))
            for name in random.sample(list(kinds), len(kinds)):
                topic, answer = kinds[name]
                samples[name] += [
                    timer.round_trip(topic, answer, next(counter)) * 1e3 for _ in range(batch)
                ]
        for name, taken in samples.items():
            p50s[name].append(percentile(taken, 0.5))
            p99s[name].append(percentile(taken, 0.99))
    stolen = stolen_since(before)
    figures = [
        Figure(
            group=GROUP,
            name=FLOOR,
            value=median(p50s[FLOOR]),
            unit="ms",
            p99=median(p99s[FLOOR]),
            runs=tuple(p50s[FLOOR]),
            note=join_notes(
                "QoS 1 both ways; a paho client in another process republishes each message",
                stolen,
            ),
        ),
        Figure(
            group=GROUP,
            name=LATENCY,
            value=median(p50s[LATENCY]),
            unit="ms",
            p99=median(p99s[LATENCY]),
            floor=key(GROUP, FLOOR),
            runs=tuple(p50s[LATENCY]),
            note=join_notes(
                f"QoS 1 publish to {IN} until the result on {OUT}, one at a time, "
                f"alternated with the floor in batches of {BATCH}",
                stolen,
            ),
        ),
    ]
    above = [f - b for f, b in zip(p50s[LATENCY], p50s[FLOOR], strict=True)]
    above_p99 = median(p99s[LATENCY]) - median(p99s[FLOOR])
    figures.append(
        Figure(
            group=GROUP,
            name=ABOVE,
            value=median(above),
            unit="ms",
            runs=tuple(above),
            note=f"p50 minus the floor's, per run; target: at most 2 ms; p99: {above_p99:+.3f} ms",
        )
    )
    return figures


def _sustained(config: BenchConfig, broker: Broker, timer: _Timer, count: int) -> list[Figure]:
    """``count`` messages as fast as ``mosquitto_pub -l`` sends them, per run, to fless and
    to the bare echo in turn (in a random order each run)."""
    rates: list[float] = []
    floor_rates: list[float] = []
    delivered: list[float] = []
    duplicates = 0
    before = cpu_times()
    for run in range(config.repeats):
        base = SUSTAINED_BASE * (2 * run + 1)
        for kind in random.sample(["fless", "floor"], 2):
            if kind == "floor":
                echoed = _flood(broker, timer, FLOOR_IN, FLOOR_OUT, base + SUSTAINED_BASE, count)
                if echoed.seconds:
                    floor_rates.append(echoed.answered / echoed.seconds)
                continue
            flood = _flood(broker, timer, IN, OUT, base, count)
            duplicates += flood.duplicates
            delivered.append(float(flood.answered))
            if flood.seconds:
                rates.append(flood.answered / flood.seconds)
    lost = int(count * config.repeats - sum(delivered))
    stolen = stolen_since(before)
    floor_name = sustained_floor_name(count)
    return [
        Figure(
            group=GROUP,
            name=floor_name,
            value=median(floor_rates) if floor_rates else 0.0,
            unit="events/s",
            runs=tuple(floor_rates),
            note=join_notes(
                "the same messages through the bare echo of the latency floor, "
                "alternated with fless's runs",
                stolen,
            ),
        ),
        Figure(
            group=GROUP,
            name=sustained_name(count),
            value=median(rates) if rates else 0.0,
            unit="events/s",
            runs=tuple(rates),
            errors=lost,
            floor=key(GROUP, floor_name),
            note=join_notes(
                "from the first publish to the last result; target: 1,000/s with none lost",
                stolen,
            ),
        ),
        Figure(
            group=GROUP,
            name=delivered_name(count),
            value=median(delivered),
            unit="events",
            runs=tuple(delivered),
            errors=lost,
            note=f"per run; lost over {config.repeats} run(s): {lost} (target 0); "
            f"delivered twice: {duplicates}",
        ),
    ]


@dataclass(frozen=True)
class _Flood:
    """What came back of a flood of messages.

    Attributes:
        answered: messages answered (once or more).
        seconds: from the first publish to the last answer (0 if none came).
        duplicates: answers that came again.
    """

    answered: int
    seconds: float
    duplicates: int


def _flood(broker: Broker, timer: _Timer, topic: str, answer: str, base: int, count: int) -> _Flood:
    """Publishes messages ``base`` to ``base + count`` as fast as they go; what came back."""
    wanted = set(range(base, base + count))
    lines = [json.dumps({"n": n, "from": "fless bench"}).encode() for n in sorted(wanted)]
    duplicates = 0
    start = time.perf_counter()
    got: dict[int, float] = {}
    with ThreadPoolExecutor(1) as pool:
        sent = pool.submit(broker.publish_many, topic, lines)
        deadline = start + max(60.0, count / 50)
        while len(got) < count and time.perf_counter() < deadline:
            try:
                came, n, arrived = timer.arrived.get(timeout=0.5)
            except queue.Empty:
                continue
            if came != answer or n not in wanted:
                continue
            if n in got:
                duplicates += 1
            else:
                got[n] = arrived
        sent.result()
    return _Flood(len(got), max(got.values()) - start if got else 0.0, duplicates)


def _queued(config: BenchConfig, node: Node, count: int) -> list[Figure]:
    """``count`` queued invocations per run: the 202s a second, then the completions."""
    accepted, completed = [], []
    refused = failed = 0
    before = cpu_times()
    for _ in range(config.repeats):
        start = time.perf_counter()
        with ThreadPoolExecutor(ASYNC_THREADS) as pool:
            shares = [range(i, count, ASYNC_THREADS) for i in range(ASYNC_THREADS)]
            answers = list(pool.map(lambda share: _post_async(node, share), shares))
        accepted.append(count / (time.perf_counter() - start))
        ids = sorted((n, i) for share in answers for n, i in share[0])
        refused += sum(share[1] for share in answers)
        failed += _poll(node, [i for _, i in ids])
        completed.append(count / (time.perf_counter() - start))
    stolen = stolen_since(before)
    return [
        Figure(
            group=GROUP,
            name=accepted_name(count),
            value=median(accepted),
            unit="req/s",
            runs=tuple(accepted),
            errors=refused,
            note=join_notes(
                f"POST /v1/fn/_/{QUEUED}?async=true on keep-alive connections; errors: not 202",
                stolen,
            ),
        ),
        Figure(
            group=GROUP,
            name=completed_name(count),
            value=median(completed),
            unit="req/s",
            runs=tuple(completed),
            errors=failed,
            note=join_notes(
                "from the first POST until GET /v1/invocations/{id} answers ok for the last",
                stolen,
            ),
        ),
    ]


def _post_async(node: Node, numbers: range) -> tuple[list[tuple[int, str]], int]:
    """Queues one invocation per number on one connection; their ids, and the refusals."""
    headers = {"Authorization": f"Bearer {node.key}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=60)
    ids, refused = [], 0
    try:
        for n in numbers:
            body = json.dumps({"args": {"n": n}})
            conn.request("POST", f"/v1/fn/_/{QUEUED}?async=true", body, headers)
            response = conn.getresponse()
            raw = response.read()
            if response.status == 202:
                ids.append((n, json.loads(raw)["data"]["id"]))
            else:
                refused += 1
    finally:
        conn.close()
    return ids, refused


def _poll(node: Node, ids: list[str]) -> int:
    """Waits, in queue order, until every invocation ended; how many ended in error.

    One request at a time on one connection, and a short sleep when the next
    one is not done, so that the polling takes little from the node.
    """
    headers = {"Authorization": f"Bearer {node.key}"}
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=60)
    failed = 0
    deadline = time.monotonic() + max(60.0, len(ids) / 20)
    try:
        for invocation in ids:
            while True:
                conn.request("GET", f"/v1/invocations/{invocation}", headers=headers)
                response = conn.getresponse()
                raw = response.read()
                state = json.loads(raw)["data"]["state"] if response.status == 200 else "?"
                if state in ("ok", "error"):
                    failed += state == "error"
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"invocation {invocation} still {state} at the deadline")
                time.sleep(0.005)
    finally:
        conn.close()
    return failed
