"""A core and workers on loopback for whole-system tests: real processes, real gossip."""

from __future__ import annotations

import contextlib
import http.client
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.node import Node, WorkerNode, free_port, wait_for


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
    gossip_port = free_port()
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
        for label, mib in workers.items():
            started[label] = WorkerNode(
                root / label,
                seeds=f"127.0.0.1:{gossip_port}",
                key_dir=keys,
                memory_mib=mib,
                env={**(worker_env or {}), **(each_env or {}).get(label, {})},
            ).start()
        running = Cluster(core, started)
        wait_for(
            lambda: running.alive_workers() == {w.name for w in started.values()},
            30,
            "every worker alive in the core's view",
        )
        yield running
    finally:
        for worker in started.values():
            worker.stop()
        core.stop()
