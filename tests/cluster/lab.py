"""A core and workers on loopback for whole-system tests: real processes, real gossip."""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.node import Node, WorkerNode, wait_for


@dataclass
class Cluster:
    core: Node
    workers: dict[str, WorkerNode]

    def nodes(self) -> dict[str, dict[str, Any]]:
        status, body = self.core.request("GET", "/v1/nodes")
        assert status == 200, body
        return {n["name"]: n for n in body["data"]}

    def alive_workers(self) -> set[str]:
        return {
            name
            for name, n in self.nodes().items()
            if n["role"] == "worker" and n["state"] == "alive"
        }

    def invoke(self, name: str, args: Any, **extra: Any) -> tuple[int, Any, str]:
        """Calls ``_/name`` with ``args`` (and ``extra`` body keys, ``scheduling`` say)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.core.port, timeout=30)
        try:
            conn.request(
                "POST",
                f"/v1/fn/_/{name}",
                json.dumps({"args": args, **extra}).encode(),
                {"Authorization": f"Bearer {self.core.key}"},
            )
            response = conn.getresponse()
            return (
                response.status,
                json.loads(response.read()),
                response.getheader("X-Fless-Worker") or "",
            )
        finally:
            conn.close()


@contextlib.contextmanager
def start_cluster(
    root: Path,
    workers: Mapping[str, int],
    core_env: Mapping[str, str] | None = None,
    worker_env: Mapping[str, str] | None = None,
    each_env: Mapping[str, Mapping[str, str]] | None = None,
) -> Iterator[Cluster]:
    """A ``--role core`` node and one worker per label (its memory in MiB), all alive.

    The workers hold the core's keys and join through its gossip port; every
    process is stopped on the way out. ``each_env`` adds settings to the
    worker of a label (its name, say).
    """
    gossip_port = free_ports(1)[0]
    core = Node(
        root / "core",
        None,
        "--role",
        "core",
        "--gossip-port",
        str(gossip_port),
        env=dict(core_env or {}),
    ).start()
    keys = root / "core" / "keys"
    started: dict[str, WorkerNode] = {}
    try:
        running = Cluster(core, started)
        for label, mib in workers.items():
            # Its ports are picked once the worker before it holds its own: a
            # port probed free while that one was still starting could be the
            # one it was about to bind, and a worker whose RPC bind fails exits.
            rpc_port, worker_gossip_port = free_ports(2)
            worker = started[label] = WorkerNode(
                root / label,
                seeds=f"127.0.0.1:{gossip_port}",
                key_dir=keys,
                memory_mib=mib,
                rpc_port=rpc_port,
                gossip_port=worker_gossip_port,
                env={**(worker_env or {}), **(each_env or {}).get(label, {})},
            ).start()
            _wait_alive(running, worker, label)
        yield running
    finally:
        for worker in started.values():
            worker.stop()
        core.stop()


def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports, free for TCP and UDP, that no connection will take.

    They are below the kernel's ephemeral range: a port probed free there
    could be taken, before the node binds it, by any outgoing connection
    (ZeroMQ's, gossip's) or any bind to port 0 (a node starting meanwhile).
    Gossip binds its port for UDP and TCP alike, so both are probed.
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    with contextlib.ExitStack() as held:
        ports: list[int] = []
        while len(ports) < count:
            port = random.randrange(10_000, low)
            tcp = held.enter_context(socket.socket())
            udp = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            try:
                tcp.bind(("127.0.0.1", port))
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken: another
            if port not in ports:
                ports.append(port)
        return ports


def _wait_alive(cluster: Cluster, worker: WorkerNode, label: str) -> None:
    """Waits for ``worker`` in the core's view; on failure says why, with its log."""

    def alive() -> bool:
        if worker.proc is not None and worker.proc.poll() is not None:
            raise AssertionError(
                f"worker {label} exited with {worker.proc.returncode}:\n{worker.log()}"
            )
        return worker.name in cluster.alive_workers()

    try:
        wait_for(alive, 30, f"worker {label} alive in the core's view")
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\ncore sees: {cluster.nodes()}\n--- worker {label}:\n{worker.log()}"
            f"\n--- core:\n{cluster.core.log()}"
        ) from None
