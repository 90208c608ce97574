"""Warm invoke latency and throughput of fless over HTTP keep-alive.

Real ``fless-node`` processes on free loopback ports (the launchers of the
end-to-end tests), the hello uploaded in both ABIs, and wrk as the client:

- warm latency, p50 and p99, one connection: ``--role all``, and a
  ``--role core`` with two workers (every call crosses ZeroMQ to a worker);
- throughput at 1, 8 and 32 connections on ``--role all``, with the errors
  (answers other than 200, socket errors), of which there must be none.

Each figure names its floor (``bench._floors``) for the ratio.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from fless.exec import Abi

from . import _floors, _load, hello
from ._load import Target
from ._model import BenchConfig, Figure
from ._report import key, missing

if TYPE_CHECKING:
    from e2e.node import Node, WorkerNode

LATENCY = "warm latency"
THROUGHPUT = "throughput"
ALL = "role all"
CLUSTER = "core + 2 workers"
ABIS = _floors.ABIS
CONNECTIONS = _floors.CONNECTIONS
WORKERS = 2
# Each worker advertises this much memory; the hello asks for the default 64 MiB.
WORKER_MEMORY_MIB = 1024


def function_name(abi: Abi) -> str:
    """The name the hello is uploaded under, in module ``_``."""
    return f"hello_{abi.value}"


def latency_name(setup: str, abi: Abi) -> str:
    """A warm-latency figure's name."""
    return f"{setup}, {_floors.LABEL[abi]}"


def rate_name(abi: Abi, connections: int) -> str:
    """A throughput figure's name."""
    return f"{ALL}, {_floors.LABEL[abi]}, {_floors.clients(connections)}"


def latency_key(setup: str, abi: Abi) -> str:
    """A warm-latency figure's key (for the peer's comparison)."""
    return key(LATENCY, latency_name(setup, abi))


def rate_key(abi: Abi, connections: int) -> str:
    """A throughput figure's key (for the peer's comparison)."""
    return key(THROUGHPUT, rate_name(abi, connections))


def measure(config: BenchConfig) -> list[Figure]:
    """Warm latency on one node and on a small cluster, throughput on one node."""
    if _load.wrk_binary() is None:
        reason = f"wrk is not installed: {_load.WRK_INSTALL}"
        return [
            *(
                missing(LATENCY, latency_name(s, abi), "ms", reason)
                for s in (ALL, CLUSTER)
                for abi in ABIS
            ),
            *(
                missing(THROUGHPUT, rate_name(abi, c), "req/s", reason)
                for abi in ABIS
                for c in CONNECTIONS
            ),
        ]
    codes = {abi: hello.wasm(config, abi).read_bytes() for abi in ABIS}
    figures: list[Figure] = []
    with _run_dir(config) as root:
        with single_node(root) as node:
            targets = {abi: _upload(node, abi, codes[abi]) for abi in ABIS}
            figures += [
                _load.latency_figure(
                    config,
                    targets[abi],
                    LATENCY,
                    latency_name(ALL, abi),
                    floor=_floors.local_floor(abi),
                )
                for abi in ABIS
            ]
            figures += [
                _load.throughput_figure(
                    config,
                    targets[abi],
                    c,
                    THROUGHPUT,
                    rate_name(abi, c),
                    floor=_floors.rate_floor(c),
                )
                for abi in ABIS
                for c in CONNECTIONS
            ]
        with cluster(root) as (core, _):
            targets = {abi: _upload(core, abi, codes[abi], workers=WORKERS) for abi in ABIS}
            figures += [
                _load.latency_figure(
                    config,
                    targets[abi],
                    LATENCY,
                    latency_name(CLUSTER, abi),
                    floor=_floors.cluster_floor(abi),
                    note="every call crosses ZeroMQ to a worker",
                )
                for abi in ABIS
            ]
    return figures


@contextlib.contextmanager
def _run_dir(config: BenchConfig) -> Iterator[Path]:
    """A fresh directory for the nodes' data and logs; kept if the run fails, for its logs."""
    config.work_dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="latency-", dir=config.work_dir))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def single_node(
    root: Path, bin_dir: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[Node]:
    """One node of role all (``bin_dir``: another tree's fless-node, for ``bench.ab``)."""
    from e2e.node import Node  # importable once bench._model put tests/ on sys.path

    node = Node(root / "all", env=env, bin_dir=bin_dir).start()
    try:
        yield node
    finally:
        node.stop()


@contextlib.contextmanager
def cluster(
    root: Path, bin_dir: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[tuple[Node, list[WorkerNode]]]:
    """A core (with ``env``) and two workers on loopback, once the core sees both alive."""
    from e2e.node import Node, WorkerNode, free_port

    gossip_port = free_port()
    core = Node(
        root / "core",
        None,
        "--role",
        "core",
        "--gossip-port",
        str(gossip_port),
        env=env,
        bin_dir=bin_dir,
    )
    workers: list[WorkerNode] = []
    try:
        core.start()
        workers += [
            WorkerNode(
                root / f"worker{i}",
                seeds=f"127.0.0.1:{gossip_port}",
                key_dir=root / "core" / "keys",
                memory_mib=WORKER_MEMORY_MIB,
                bin_dir=bin_dir,
            ).start()
            for i in range(WORKERS)
        ]
        wait_alive(core, {w.name for w in workers})
        yield core, workers
    finally:
        for worker in workers:
            worker.stop()
        core.stop()


def wait_alive(core: Node, names: set[str], timeout: float = 30.0) -> None:
    """Waits until the core lists every worker of ``names`` alive.

    Raises:
        LoadError: not within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = core.request("GET", "/v1/nodes")
        if status == 200 and names <= {
            n["name"] for n in body["data"] if n["role"] == "worker" and n["state"] == "alive"
        }:
            return
        time.sleep(0.05)
    raise _load.LoadError(f"the workers were not alive in the core's view within {timeout} s")


def _upload(node: Node, abi: Abi, code: bytes, workers: int | None = None) -> Target:
    """Uploads the hello; the target that invokes it. With ``workers``, checks that
    the code was pushed to that many."""
    name = function_name(abi)
    status, body = node.upload("_", name, code)
    if status != 201:
        raise _load.LoadError(f"uploading {name} answered {status}: {body}")
    if workers is not None and body["data"].get("workers") != workers:
        raise _load.LoadError(
            f"{name} was pushed to {body['data'].get('workers')} workers, not {workers}"
        )
    status, body = node.invoke("_", name, hello.ARGS)
    if (status, body) != (200, {"data": hello.OUTPUT}):
        raise _load.LoadError(f"invoking {name} answered {status}: {body}")
    return Target(f"{node.url}/v1/fn/_/{name}", (("Authorization", f"Bearer {node.key}"),))
