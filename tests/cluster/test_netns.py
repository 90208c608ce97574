"""A cluster across network namespaces: discovery by the multicast beacon, and strangers kept out.

Each node runs in its own namespace on a private bridge (see ``netns``), as
on separate boards of one LAN: no loopback shortcuts, no seeds, real
multicast. Root only; skipped otherwise.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cluster.netns import BIN, Lab, available, node_env, wait_for
from e2e.node import multipart
from fixtures.build import wat

CORE, GOOD, STRANGER = 1, (2, 3), 4
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
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def admin_key(self) -> str:
        return (self.root / "core" / "admin.key").read_text().strip()

    def request(
        self, method: str, path: str, body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, str]:
        """One HTTP request from the root namespace to the core: status, body, worker."""
        conn = http.client.HTTPConnection(Lab.address(CORE), API_PORT, timeout=10)
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
            name: n["address"] for name, n in self.nodes().items()
            if n["role"] == "worker" and n["state"] == "alive"
        }

    def invoke(self, name: str, args: Any) -> tuple[int, Any, str]:
        return self.request("POST", f"/v1/fn/_/{name}", json.dumps({"args": args}).encode(),
                            {"Content-Type": "application/json"})

    def upload(self, name: str, code: bytes) -> tuple[int, Any]:
        body, ctype = multipart([("name", None, name.encode()), ("code", "code.wasm", code)])
        status, decoded, _ = self.request("POST", "/v1/fn/_", body, {"Content-Type": ctype})
        return status, decoded

    def start_worker(self, i: int, key_dir: Path, *extra: str) -> None:
        self.procs[f"worker{i}"] = self.lab.spawn(
            i,
            [str(BIN / "fless-node"), "--role", "worker", "--data-dir", str(self.root / f"w{i}"),
             "--key-dir", str(key_dir), "--rpc-port", str(rpc_port(i)),
             "--gossip-port", str(GOSSIP_PORT), *extra],
            node_env(Lab.address(i), FLESS_WORKER_MEMORY_MIB=str(MEMORY_MIB)),
            f"worker{i}",
        )

    def log(self, name: str) -> str:
        path = self.lab.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{self.log(n)[-3000:]}" for n in self.procs)

    def ping(self, i: int, key_dir: Path, target: int, timeout: float) -> str:
        """Runs the PING script in namespace ``i`` against worker ``target``; its output."""
        script = self.root / "ping.py"
        script.write_text(PING)
        endpoint = f"tcp://{Lab.address(target)}:{rpc_port(target)}"
        done = self.lab.run(
            i, [str(BIN / "python"), str(script), str(key_dir), endpoint, str(timeout)],
            env=node_env(Lab.address(i)), timeout=timeout + 20,
        )
        assert done.returncode == 0, done.stderr
        out: str = done.stdout
        return out


def _keygen(directory: Path) -> None:
    done = subprocess.run([str(BIN / "fless-node"), "keygen", "--key-dir", str(directory)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    reason = available()
    if reason is not None:
        if os.geteuid() == 0:
            # As root (as in CI) the tests must run: a missing tool is a failure.
            pytest.fail(f"{reason} (make test installs it when run as root)")
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("netns")
    keys = root / "keys"
    _keygen(keys)
    lab = Lab(4, root)
    try:
        lab.open()
        running = Net(lab, root, keys)
        running.procs["core"] = lab.spawn(
            CORE,
            [str(BIN / "fless-node"), "--role", "core", "--host", Lab.address(CORE),
             "--port", str(API_PORT), "--data-dir", str(root / "core"), "--key-dir", str(keys),
             "--gossip-port", str(GOSSIP_PORT)],
            node_env(Lab.address(CORE)),
            "core",
        )
        for i in GOOD:
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


def worker_name(i: int) -> str:
    return f"{socket.gethostname()}-worker-{Lab.address(i)}-{rpc_port(i)}"


def good_names() -> set[str]:
    return {worker_name(i) for i in GOOD}


def test_workers_are_found_by_the_beacon_alone_and_serve(net: Net) -> None:
    try:
        wait_for(lambda: set(net.alive_workers()) == good_names(), 15,
                 "both workers alive in the core's view", every=0.2)
    except AssertionError:
        raise AssertionError(f"{net.nodes()}\n{net.logs()}") from None
    nodes = net.nodes()
    for i in GOOD:
        node = nodes[worker_name(i)]
        assert node["address"] == f"{Lab.address(i)}:{GOSSIP_PORT}"
        assert node["rpc"] == f"tcp://{Lab.address(i)}:{rpc_port(i)}"
        assert node["mem_total"] == MEMORY_MIB * 2**20
    # Nobody was given a seed: only the beacon can have introduced them.
    assert any("beacon: found" in net.log(n) for n in ("core", *(f"worker{i}" for i in GOOD)))

    status, body = net.upload("hello", wat("fl_hello"))
    assert status == 201, body
    assert body["data"]["workers"] == 2
    status, body, worker = net.invoke("hello", {"n": 1})
    assert (status, body) == (200, {"data": {"hello": {"n": 1}}})
    assert worker in good_names()


def test_a_stranger_without_the_keys_is_not_admitted(net: Net) -> None:
    wait_for(lambda: set(net.alive_workers()) == good_names(), 15, "the good workers listed")
    assert net.upload("greet", wat("fl_hello"))[0] == 201
    own = net.root / "stranger-keys"
    _keygen(own)
    seed = f"{Lab.address(CORE)}:{GOSSIP_PORT}"
    net.start_worker(STRANGER, own, "--seeds", seed)
    stranger = worker_name(STRANGER)

    def stranger_ready() -> bool:
        log = net.log(f"worker{STRANGER}")
        assert net.procs[f"worker{STRANGER}"].poll() is None, f"the stranger exited:\n{log}"
        return "ready: RPC on" in log

    wait_for(stranger_ready, 15, "the stranger runs")

    deadline = time.monotonic() + 8
    landed: set[str] = set()
    while time.monotonic() < deadline:
        nodes = net.nodes()
        assert stranger not in nodes, nodes
        assert not any(n["address"].startswith(f"{Lab.address(STRANGER)}:") for n in
                       nodes.values()), nodes
        status, body, worker = net.invoke("greet", {"k": 1})
        assert (status, body) == (200, {"data": {"hello": {"k": 1}}})
        landed.add(worker)
        time.sleep(0.5)
    assert landed <= good_names(), landed
    assert set(net.alive_workers()) == good_names()

    # RPC: the stranger's keys get no answer from a good worker...
    out = net.ping(STRANGER, own, GOOD[0], timeout=2)
    assert "RPC-TIMEOUT" in out, out
    assert "handshake_failed=0" not in out, out  # refused by CURVE, not lost
    # ...while the cluster's keys, from the same namespace, do: it is the keys, not the network.
    copied = net.root / "copied-keys"
    shutil.copytree(net.keys, copied)
    out = net.ping(STRANGER, copied, GOOD[0], timeout=2)
    assert "RPC-REPLY pong" in out, out
