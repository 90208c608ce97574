"""A fless cluster across network namespaces, one node per namespace, as boards on a LAN.

``start_lan`` opens a ``Lab`` (see ``netns``), starts a core in namespace 1
and workers in the namespaces asked for, with discovery by the beacon and no
seeds, and stops them all on the way out. ``Net`` talks to them.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cluster.netns import BIN, SUBNET, Lab, available, node_env
from e2e.node import multipart, wait_for

CORE = 1
API_PORT = 4000
GOSSIP_PORT = 7471
MEMORY_MIB = 512


def rpc_port(i: int) -> int:
    # The same on every board: the namespaces share the test machine's host
    # name, as boards cloned from one image do, and must still be told apart.
    return 7470


PING = """
import asyncio, sys
from pathlib import Path
from fless.net import CurveConfig, RpcClient, RpcTimeout

async def main() -> None:
    client = RpcClient(curve=CurveConfig.load(Path(sys.argv[1])))
    try:
        reply = await client.call(sys.argv[2], "ping", {}, timeout=float(sys.argv[3]))
    except RpcTimeout:
        print("RPC-TIMEOUT", "handshake_failed=%d" % client.stats.handshake_failed)
    else:
        print("RPC-REPLY", reply.type)
    finally:
        await client.close()

asyncio.run(main())
"""


@dataclass
class Net:
    lab: Lab
    root: Path
    keys: Path
    # Settings every node gets besides the lab's (FLESS_LOG_LEVEL, say).
    env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def admin_key(self) -> str:
        return (self.root / "core" / "admin.key").read_text().strip()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, str]:
        """One HTTP request from the root namespace to the core: status, body, worker."""
        conn = http.client.HTTPConnection(self.lab.host(CORE), API_PORT, timeout=10)
        try:
            sent = {"Authorization": f"Bearer {self.admin_key}", **(headers or {})}
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        ctype = response.getheader("Content-Type") or ""
        decoded = json.loads(raw) if raw and "json" in ctype else raw.decode("utf-8", "replace")
        return response.status, decoded, response.getheader("X-Fless-Worker") or ""

    def nodes(self) -> dict[str, dict[str, Any]]:
        status, body, _ = self.request("GET", "/v1/nodes")
        assert status == 200, body
        return {n["name"]: n for n in body["data"]}

    def alive_workers(self) -> dict[str, str]:
        """Alive workers in the core's view: name -> gossip address."""
        return {
            name: n["address"]
            for name, n in self.nodes().items()
            if n["role"] == "worker" and n["state"] == "alive"
        }

    def invoke(self, name: str, args: Any) -> tuple[int, Any, str]:
        return self.request(
            "POST",
            f"/v1/fn/_/{name}",
            json.dumps({"args": args}).encode(),
            {"Content-Type": "application/json"},
        )

    def upload(self, name: str, code: bytes) -> tuple[int, Any]:
        body, ctype = multipart([("name", None, name.encode()), ("code", "code.wasm", code)])
        status, decoded, _ = self.request("POST", "/v1/fn/_", body, {"Content-Type": ctype})
        return status, decoded

    def start_worker(self, i: int, key_dir: Path, *extra: str) -> None:
        self.procs[f"worker{i}"] = self.lab.spawn(
            i,
            [
                str(BIN / "fless-node"),
                "--role",
                "worker",
                "--data-dir",
                str(self.root / f"w{i}"),
                "--key-dir",
                str(key_dir),
                "--rpc-port",
                str(rpc_port(i)),
                "--gossip-port",
                str(GOSSIP_PORT),
                *extra,
            ],
            node_env(self.lab.host(i), FLESS_WORKER_MEMORY_MIB=str(MEMORY_MIB), **self.env),
            f"worker{i}",
        )

    def worker_name(self, i: int) -> str:
        """The name the worker in namespace ``i`` gossips under."""
        return f"{socket.gethostname()}-worker-{self.lab.host(i)}-{rpc_port(i)}"

    def run(self, i: int, script: str, *args: str, timeout: float = 60) -> Any:
        """Runs a Python script in namespace ``i``; its last line of output, as JSON."""
        path = self.root / f"script-{abs(hash(script))}.py"
        path.write_text(script)
        done = self.lab.run(
            i,
            [str(BIN / "python"), str(path), *args],
            env=node_env(self.lab.host(i)),
            timeout=timeout,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout.strip().splitlines()[-1])

    def log(self, name: str) -> str:
        path = self.lab.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{self.log(n)[-3000:]}" for n in self.procs)

    def ping(self, i: int, key_dir: Path, target: int, timeout: float) -> str:
        """Runs the PING script in namespace ``i`` against worker ``target``; its output."""
        script = self.root / "ping.py"
        script.write_text(PING)
        endpoint = f"tcp://{self.lab.host(target)}:{rpc_port(target)}"
        done = self.lab.run(
            i,
            [str(BIN / "python"), str(script), str(key_dir), endpoint, str(timeout)],
            env=node_env(self.lab.host(i)),
            timeout=timeout + 20,
        )
        assert done.returncode == 0, done.stderr
        out: str = done.stdout
        return out


def keygen(directory: Path) -> None:
    """Writes a new set of cluster keys to ``directory``."""
    done = subprocess.run(
        [str(BIN / "fless-node"), "keygen", "--key-dir", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def require_lab() -> None:
    """Skips without root or tools; as root (as in CI) a missing tool fails the test."""
    reason = available()
    if reason is not None:
        if os.geteuid() == 0:
            pytest.fail(f"{reason} (make test installs it when run as root)")
        pytest.skip(reason)


@contextlib.contextmanager
def start_lan(
    root: Path,
    count: int,
    workers: Sequence[int],
    subnet: str = SUBNET,
    env: dict[str, str] | None = None,
) -> Iterator[Net]:
    """A lab of ``count`` namespaces: the core in 1, workers in ``workers``, the core answering.

    Args:
        root: where keys, data directories and logs go.
        count: namespaces, numbered from 1.
        workers: the namespaces that run a worker.
        subnet: the lab's /24, for suites that run beside another lab.
        env: settings every node gets besides the lab's.
    """
    require_lab()
    keys = root / "keys"
    keygen(keys)
    lab = Lab(count, root, subnet=subnet)
    try:
        lab.open()
        running = Net(lab, root, keys, dict(env or {}))
        running.procs["core"] = lab.spawn(
            CORE,
            [
                str(BIN / "fless-node"),
                "--role",
                "core",
                "--host",
                lab.host(CORE),
                "--port",
                str(API_PORT),
                "--data-dir",
                str(root / "core"),
                "--key-dir",
                str(keys),
                "--gossip-port",
                str(GOSSIP_PORT),
            ],
            node_env(lab.host(CORE), **running.env),
            "core",
        )
        for i in workers:
            running.start_worker(i, keys)

        def core_up() -> bool:
            if running.procs["core"].poll() is not None:
                raise AssertionError(f"the core exited:\n{running.logs()}")
            try:
                return running.request("GET", "/v1/")[0] == 200
            except OSError:
                return False

        wait_for(core_up, 30, "the core answers HTTP")
        yield running
    finally:
        lab.close()
