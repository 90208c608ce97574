"""The floors: what the parts fless is built from cost alone, measured in the same run.

- Wasm: ``WasmRuntime.run`` of the compiled hello in this process, in a loop
  (fresh store and instance per call, as every invocation gets): the cost of
  running the function, with nothing around it.
- RPC: a bare pyzmq DEALER/ROUTER round trip over loopback TCP to an echo in
  another process, with frames the size of an invocation's.
- HTTP: a bare Falcon ASGI hello under fless's gunicorn and uvicorn settings
  (``bench._falcon_hello``), driven by the same wrk runs as fless.

fless's figures are reported as ratios to sums of these: a warm invoke on
``--role all`` against HTTP + Wasm; through a core and its workers against
HTTP + RPC + Wasm; throughput against the bare Falcon's at the same
concurrency. A sum is a floor, not a prediction: fless also parses the
request, reads the store and hops to a thread.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

import cbor2
import zmq

from fless.exec import Abi, Limits, WasmRuntime

from . import _load, hello
from ._load import Target
from ._model import BenchConfig, Figure, median, percentile
from ._report import cpu_times, is_missing, join_notes, key, key_of, missing, stolen_since

GROUP = "floors"
HTTP = "HTTP: bare Falcon POST"
RPC = "RPC: pyzmq DEALER/ROUTER round trip"
CONNECTIONS = (1, 8, 32)
ABIS = (Abi.FUNLESS, Abi.WASI)
LABEL = {Abi.FUNLESS: "FunLess ABI", Abi.WASI: "WASI ABI"}
INVOKE_PATH = "/v1/fn/_/hello"


def clients(connections: int) -> str:
    """How a throughput figure names its concurrency."""
    return f"{connections} connection{'s' if connections > 1 else ''}"


def wasm_name(abi: Abi) -> str:
    """The Wasm floor of one ABI."""
    return f"Wasm: WasmRuntime.run, {LABEL[abi]}"


def http_rate_name(connections: int) -> str:
    """The bare Falcon's throughput at some concurrency."""
    return f"{HTTP}, {clients(connections)}"


def local_floor(abi: Abi) -> str:
    """The floor of a warm invoke on ``--role all``: HTTP + Wasm (a key)."""
    return key(GROUP, f"HTTP + Wasm, {LABEL[abi]}")


def cluster_floor(abi: Abi) -> str:
    """The floor of a warm invoke through a core to a worker: HTTP + RPC + Wasm (a key)."""
    return key(GROUP, f"HTTP + RPC + Wasm, {LABEL[abi]}")


def rate_floor(connections: int) -> str:
    """The floor of a throughput figure (a key)."""
    return key(GROUP, http_rate_name(connections))


def measure(config: BenchConfig) -> list[Figure]:
    """Every floor, and the sums fless's figures are compared with."""
    figures = [_wasm(config, abi) for abi in ABIS]
    figures.append(_rpc(config))
    figures += _http(config)
    return figures + _sums(figures)


# -- Wasm -------------------------------------------------------------------


def _wasm(config: BenchConfig, abi: Abi) -> Figure:
    runtime = WasmRuntime()
    try:
        function = runtime.compile(hello.wasm(config, abi).read_bytes())
        args, limits = b'{"name":"bench"}', Limits()

        def call() -> None:
            runtime.run(function, args, limits)

        p50s, p99s, stolen = _timed_runs(config, call)
    finally:
        runtime.close()
    return Figure(
        group=GROUP,
        name=wasm_name(abi),
        value=median(p50s),
        unit="us",
        p99=median(p99s),
        runs=tuple(p50s),
        note=join_notes("in process, fresh store and instance per call", stolen),
    )


def _timed_runs(
    config: BenchConfig,
    call: Callable[[], None],
) -> tuple[list[float], list[float], str]:
    """``config.repeats`` runs of ``config.requests`` calls: each run's p50 and p99, in
    us, and a note if the hypervisor stole CPU time meanwhile."""
    for _ in range(min(200, config.requests)):
        call()
    before = cpu_times()
    p50s, p99s = [], []
    for _ in range(config.repeats):
        samples = []
        for _ in range(config.requests):
            start = time.perf_counter()
            call()
            samples.append((time.perf_counter() - start) * 1e6)
        p50s.append(percentile(samples, 0.5))
        p99s.append(percentile(samples, 0.99))
    return p50s, p99s, stolen_since(before)


# -- RPC --------------------------------------------------------------------

# The worker's side: a ROUTER that sends every message back as it came.
_ECHO = """
import zmq
sock = zmq.Context().socket(zmq.ROUTER)
sock.setsockopt(zmq.LINGER, 0)
print(sock.bind_to_random_port("tcp://127.0.0.1"), flush=True)
while True:
    frames = sock.recv_multipart(copy=False)
    sock.send_multipart(frames, copy=False)
    if frames[-1].bytes == b"stop":
        break
"""


def _rpc(config: BenchConfig) -> Figure:
    echo = subprocess.Popen([sys.executable, "-c", _ECHO], stdout=subprocess.PIPE, text=True)
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        assert echo.stdout is not None
        sock.connect(f"tcp://127.0.0.1:{int(echo.stdout.readline())}")
        # An invocation's frames: a CBOR header naming the code, then the args.
        header = cbor2.dumps({"v": 1, "type": "invoke", "id": 1, "hash": "0" * 64})
        frames = [header, b'{"name":"bench"}']

        def round_trip() -> None:
            sock.send_multipart(frames)
            sock.recv_multipart()

        p50s, p99s, stolen = _timed_runs(config, round_trip)
        sock.send_multipart([b"stop"])
        sock.recv_multipart()
    finally:
        sock.close()
        context.term()
        try:
            echo.wait(timeout=5)
        except subprocess.TimeoutExpired:
            echo.kill()
            echo.wait()
    return Figure(
        group=GROUP,
        name=RPC,
        value=median(p50s),
        unit="us",
        p99=median(p99s),
        runs=tuple(p50s),
        note=join_notes("blocking DEALER here, echoing ROUTER in another process", stolen),
    )


# -- HTTP -------------------------------------------------------------------


def _http(config: BenchConfig) -> list[Figure]:
    names = [(HTTP, "ms"), *((http_rate_name(c), "req/s") for c in CONNECTIONS)]
    if _load.wrk_binary() is None:
        reason = f"wrk is not installed: {_load.WRK_INSTALL}"
        return [missing(GROUP, name, unit, reason) for name, unit in names]
    # The end-to-end tests' helpers; importable once bench._model put tests/ on sys.path.
    from e2e.node import free_port

    port = free_port()
    target = Target(f"http://127.0.0.1:{port}{INVOKE_PATH}")
    run_dir = config.work_dir / "floors"
    command = [sys.executable, "-m", "bench._falcon_hello", str(port)]
    with _load.served(command, target, run_dir / "falcon.log"):
        figures = [
            _load.latency_figure(
                config, target, GROUP, HTTP, note="gunicorn + uvicorn worker, as fless-node"
            )
        ]
        figures += [
            _load.throughput_figure(config, target, c, GROUP, http_rate_name(c))
            for c in CONNECTIONS
        ]
    return figures


# -- the sums ---------------------------------------------------------------


def _sums(figures: list[Figure]) -> list[Figure]:
    """HTTP + Wasm and HTTP + RPC + Wasm for each ABI, in ms: per run, p50 and p99 added."""
    by_key = {key_of(f): f for f in figures}
    http, rpc = by_key[key(GROUP, HTTP)], by_key[key(GROUP, RPC)]
    sums = []
    for abi in ABIS:
        wasm = by_key[key(GROUP, wasm_name(abi))]
        for floor, parts in (
            (local_floor(abi), (http, wasm)),
            (cluster_floor(abi), (http, rpc, wasm)),
        ):
            name = floor.removeprefix(f"{GROUP}: ")
            absent = [p for p in parts if is_missing(p)]
            if absent:
                reason = absent[0].note.removeprefix("missing: ")
                sums.append(missing(GROUP, name, "ms", f"{absent[0].name}: {reason}"))
                continue
            scale = [1.0 if p.unit == "ms" else 1e-3 for p in parts]
            runs = tuple(
                sum(p.runs[i] * s for p, s in zip(parts, scale, strict=True))
                for i in range(min(len(p.runs) for p in parts))
            )
            sums.append(
                Figure(
                    group=GROUP,
                    name=name,
                    unit="ms",
                    value=sum(p.value * s for p, s in zip(parts, scale, strict=True)),
                    p99=sum((p.p99 or 0.0) * s for p, s in zip(parts, scale, strict=True)),
                    runs=runs,
                    note="sum of the medians above (p99: sum of the p99s)",
                )
            )
    return sums
