"""Test 9: a node without the cluster's keys gets nothing; forged or replayed packets are dropped.

A core and a worker with the cluster's keys, a stranger worker with keys of
its own, and an attacker namespace, each in a network namespace on a private
bridge in 10.78.0.0/24 (see ``cluster.netns``). The stranger can neither join
gossip, nor have a worker run its RPC, nor be sent code; beacons that are
replayed, altered, or sealed with another key are dropped and lead nowhere.
Gossip datagrams themselves, recorded off the wire and sent again or
altered, are dropped by the receiving member (checked on loopback, where the
member's counters can be read). Root only, as the namespace tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import lmdb
import pytest
from cluster.lan import CORE, GOSSIP_PORT, Net, keygen, rpc_port, start_lan
from cluster.netns import node_env
from e2e.node import Node, WorkerNode, free_port, wait_for
from fixtures.build import wat

from fless.gossip import (
    Announcement,
    BeaconRejected,
    BeaconVerifier,
    Membership,
    NodeMeta,
    beacon_key,
    encode_beacon,
)
from fless.net import CurveConfig, Message, RpcClient, RpcServer, RpcTimeout, generate_cluster_keys

SUBNET = "10.78.0"
GOOD, STRANGER, ATTACKER = 2, 3, 4

RPC_SCRIPT = """
import asyncio, dataclasses, hashlib, json, sys
from pathlib import Path
import zmq.auth
from fless.net import CurveConfig, RpcClient, RpcTimeout

async def main() -> None:
    key_dir, endpoint, code_path = sys.argv[1], sys.argv[2], sys.argv[3]
    code = Path(code_path).read_bytes()
    sha = hashlib.sha256(code).hexdigest()
    curve = CurveConfig.load(Path(key_dir))
    if len(sys.argv) > 4:
        # The cluster's server public key (not a secret) with this node's own client pair.
        server_public, _ = zmq.auth.load_certificate(sys.argv[4])
        curve = dataclasses.replace(curve, server_public=server_public)
    client = RpcClient(curve=curve)
    out = {}
    try:
        for kind, fields, frames in (("ping", {}, ()), ("push", {"hash": sha}, (code,))):
            try:
                reply = await client.call(endpoint, kind, fields, frames, timeout=3.0)
                out[kind] = reply.type
            except RpcTimeout:
                out[kind] = "timeout"
        out["handshake_failed"] = client.stats.handshake_failed
    finally:
        await client.close()
    print(json.dumps(out))

asyncio.run(main())
"""

# Listens for one genuine beacon of the good worker, then sends it again as it
# was, altered to point at this namespace, and sealed with a key of its own;
# meanwhile watches whether anybody tries to gossip with this namespace.
BEACON_SCRIPT = """
import hashlib, hmac, json, os, socket, struct, sys, time
group, port, me, wanted = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].encode()
gossip = int(sys.argv[5])
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
rx.bind((group, port))
rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
              socket.inet_aton(group) + socket.inet_aton("0.0.0.0"))
rx.settimeout(15)
while True:
    data, _ = rx.recvfrom(2048)
    if wanted in data:
        break
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
gossip_udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
gossip_udp.bind((me, gossip))
gossip_udp.settimeout(0.2)
gossip_tcp = socket.socket()
gossip_tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
gossip_tcp.bind((me, gossip))
gossip_tcp.listen()
gossip_tcp.settimeout(0.2)

body, mac = data[:-32], data[-32:]
new = (me + ":" + str(gossip)).encode()
# The same length, so only the address differs: a forger's best try without the key.
assert len(new) == len(wanted)
moved = body.replace(wanted, new)
fresh_header = body[:4] + struct.pack(">Q", int(time.time() * 1000)) + os.urandom(16)
own_key = hashlib.sha256(b"not the cluster key").digest()
resealed = fresh_header + moved[28:]
resealed += hmac.digest(own_key, resealed, hashlib.sha256)
for _ in range(3):
    tx.sendto(data, (group, port))             # replayed
    tx.sendto(moved + mac, (group, port))      # altered, old seal
    tx.sendto(resealed, (group, port))         # sealed with another key
    time.sleep(0.3)
contacted = []
deadline = time.monotonic() + 4
while time.monotonic() < deadline:
    try:
        _, source = gossip_udp.recvfrom(4096)
        contacted.append("udp:" + source[0])
    except OSError:
        pass
    try:
        conn, source = gossip_tcp.accept()
        conn.close()
        contacted.append("tcp:" + source[0])
    except OSError:
        pass
print(json.dumps({"captured": len(data), "contacted": contacted}))
"""


def cached_hashes(data_dir: Path) -> set[str]:
    """The code hashes a worker's cache holds (read from its LMDB files)."""
    path = data_dir / "cache"
    if not path.exists():
        return set()
    env = lmdb.open(str(path), readonly=True, lock=True, max_dbs=4)
    try:
        meta = env.open_db(b"meta", create=False)
        with env.begin(db=meta) as txn:
            return {bytes(k).decode().split(":")[0] for k in txn.cursor().iternext(values=False)}
    finally:
        env.close()


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    root = tmp_path_factory.mktemp("strangers")
    with start_lan(root, 4, [GOOD], subnet=SUBNET, env={"FLESS_LOG_LEVEL": "debug"}) as running:
        keygen(stranger_keys_of(running))
        seed = f"{running.lab.host(CORE)}:{GOSSIP_PORT}"
        running.start_worker(STRANGER, stranger_keys_of(running), "--seeds", seed)

        def ready() -> bool:
            for name, proc in running.procs.items():
                assert proc.poll() is None, f"{name} exited:\n{running.logs()}"
            return set(running.alive_workers()) == {
                running.worker_name(GOOD)
            } and "ready: RPC on" in running.log(f"worker{STRANGER}")

        wait_for(ready, 30, "the core, the good worker and the stranger run", every=0.2)
        yield running


def stranger_keys_of(net: Net) -> Path:
    """The stranger's own key set: a cluster of one, beside the lab's."""
    return net.root / "stranger-keys"


def test_the_stranger_neither_joins_nor_is_sent_code(net: Net) -> None:
    code = wat("fl_hello")
    sha = hashlib.sha256(code).hexdigest()
    status, body = net.upload("hello", code)
    assert status == 201, body
    assert body["data"]["workers"] == 1  # the good worker only
    for _ in range(10):
        status, answer, worker = net.invoke("hello", {"n": 1})
        assert (status, answer) == (200, {"data": {"hello": {"n": 1}}})
        assert worker == net.worker_name(GOOD)
    nodes = net.nodes()
    assert net.worker_name(STRANGER) not in nodes, nodes
    assert not any(n["address"].startswith(f"{net.lab.host(STRANGER)}:") for n in nodes.values()), (
        nodes
    )
    assert sha in cached_hashes(net.root / f"w{GOOD}")
    assert sha not in cached_hashes(net.root / f"w{STRANGER}")
    # Its beacons were heard and refused for their seal, not missed.
    wait_for(
        lambda: f"dropped a datagram from {net.lab.host(STRANGER)}: bad-mac" in net.log("core"),
        10,
        "the core drops the stranger's beacons",
    )
    # And the stranger, seeded with the core, sees nobody but itself.
    assert net.worker_name(GOOD) not in net.log(f"worker{STRANGER}")


def test_a_worker_runs_no_rpc_of_the_stranger(net: Net) -> None:
    code_path = net.root / "pushed.wasm"
    # Code the cluster never stored: a custom section named "strangers" makes its hash new.
    code = wat("fl_hello") + b"\x00\x0a\x09strangers"
    code_path.write_bytes(code)
    sha = hashlib.sha256(code).hexdigest()
    endpoint = f"tcp://{net.lab.host(GOOD)}:{rpc_port(GOOD)}"

    out = net.run(STRANGER, RPC_SCRIPT, str(stranger_keys_of(net)), endpoint, str(code_path))
    assert out["ping"] == "timeout" and out["push"] == "timeout", out
    assert out["handshake_failed"] > 0, out  # refused by CURVE, not lost
    # Its server key is not the worker's: the CURVE handshake itself fails.
    assert "handshake failed" in net.log(f"worker{GOOD}")

    # Knowing the cluster's server public key (a public file) is not enough:
    # the worker's ZAP handler refuses any client key but the cluster's.
    out = net.run(
        STRANGER,
        RPC_SCRIPT,
        str(stranger_keys_of(net)),
        endpoint,
        str(code_path),
        str(net.keys / "server.key"),
    )
    assert out["ping"] == "timeout" and out["push"] == "timeout", out
    stranger_public = re.search(
        r'public-key = "([^"]+)"', (stranger_keys_of(net) / "client.key").read_text()
    )
    assert stranger_public is not None
    assert f"refused a CURVE client with key {stranger_public.group(1)}" in net.log(f"worker{GOOD}")
    assert sha not in cached_hashes(net.root / f"w{GOOD}")

    # The same namespace with the cluster's keys is answered: it is the keys, not the network.
    copied = net.root / "copied-keys"
    shutil.copytree(net.keys, copied)
    out = net.run(STRANGER, RPC_SCRIPT, str(copied), endpoint, str(code_path))
    assert (out["ping"], out["push"]) == ("pong", "ack"), out
    assert sha in cached_hashes(net.root / f"w{GOOD}")


def test_replayed_altered_and_foreign_beacons_are_dropped(net: Net) -> None:
    good_address = f"{net.lab.host(GOOD)}:{GOSSIP_PORT}"
    group = node_env("x")["FLESS_CLUSTER_BEACON_GROUP"]
    port = node_env("x")["FLESS_CLUSTER_BEACON_PORT"]
    before = net.log("core")
    out = net.run(
        ATTACKER, BEACON_SCRIPT, group, port, net.lab.host(ATTACKER), good_address, str(GOSSIP_PORT)
    )
    assert out["captured"] > 0
    assert out["contacted"] == [], out  # nobody went to gossip with the forged address
    attacker = net.lab.host(ATTACKER)

    def dropped(reason: str) -> bool:
        return f"dropped a datagram from {attacker}: {reason}" in net.log("core")[len(before) :]

    wait_for(
        lambda: dropped("replayed") and dropped("bad-mac"),
        10,
        "the core logs the replayed and the forged beacons as dropped",
    )
    assert "found" not in "".join(
        line for line in net.log("core")[len(before) :].splitlines() if attacker in line
    )
    assert attacker not in json.dumps(net.nodes())


# -- gossip datagrams, on loopback -------------------------------------------------------


def _meta(name: str) -> NodeMeta:
    return NodeMeta("worker", "tcp://127.0.0.1:7470", "x86_64", 1 << 30, 1 << 29, "t")


class Sniffer:
    """Records UDP payloads on the loopback interface (an AF_PACKET socket: root only)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
        self.sock.bind(("lo", 0))
        self.sock.setblocking(False)

    def udp_to(self, port: int) -> list[bytes]:
        """UDP payloads sent to ``port`` since the last call."""
        found = []
        while True:
            try:
                frame, meta = self.sock.recvfrom(65535)
            except BlockingIOError:
                return found
            if meta[2] == socket.PACKET_OUTGOING:
                continue  # loopback shows each packet leaving and arriving
            ip = frame[14:]
            if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_UDP:
                continue
            header = (ip[0] & 0x0F) * 4
            _, dst, length, _ = struct.unpack(">HHHH", ip[header : header + 8])
            if dst == port:
                found.append(ip[header + 8 : header + length])

    def close(self) -> None:
        self.sock.close()


def test_recorded_gossip_datagrams_are_dropped_when_sent_again_or_altered() -> None:
    if os.geteuid() != 0:
        pytest.skip("reading loopback frames needs root (CAP_NET_RAW); CI runs as root")
    key = os.urandom(32)

    async def main() -> None:
        sniffer = Sniffer()
        a = Membership("a", "127.0.0.1", 0, _meta("a"), key=key)
        await a.start()
        b = Membership("b", "127.0.0.1", 0, _meta("b"), seeds=[a.address], key=key)
        await b.start()
        try:
            for _ in range(100):
                if len(a.members()) == 2 and len(b.members()) == 2:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)  # some probes and gossip between them
            recorded = sniffer.udp_to(b.port)
            assert recorded, "no gossip datagram to b was seen on loopback"
            before = b.counters()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
                for datagram in recorded[:20]:
                    attacker.sendto(datagram, ("127.0.0.1", b.port))
                for datagram in recorded[:20]:
                    altered = bytearray(datagram)
                    altered[len(altered) // 2] ^= 0x01
                    attacker.sendto(bytes(altered), ("127.0.0.1", b.port))
            await asyncio.sleep(1.0)
            after = b.counters()
            replays = after["replays_dropped"] - before["replays_dropped"]
            forged = after["decrypt_failures"] - before["decrypt_failures"]
            assert replays >= min(len(recorded), 20), (before, after, len(recorded))
            assert forged >= min(len(recorded), 20), (before, after)
            assert {m.name for m in b.members()} == {"a", "b"}
        finally:
            sniffer.close()
            with contextlib.suppress(Exception):
                await b.stop()
            await a.stop()

    asyncio.run(main())


# -- key rotation: old and new keys side by side -------------------------------------------


def _rotation_sets(root: Path) -> tuple[Path, Path]:
    """The old set, and a wholly new one: gossip key, client pair and server pair."""
    old, new = root / "old", root / "new"
    keygen(old)
    keygen(new)
    return old, new


def test_nodes_mid_rotation_accept_each_others_keys(tmp_path: Path) -> None:
    old, new = _rotation_sets(tmp_path)
    # The core still sends with the old keys and has the new ones in next/;
    # the worker already sends with the new ones and keeps the old in previous/.
    core_keys, worker_keys = tmp_path / "core-keys", tmp_path / "worker-keys"
    shutil.copytree(old, core_keys)
    shutil.copytree(new, core_keys / "next")
    shutil.copytree(new, worker_keys)
    shutil.copytree(old, worker_keys / "previous")
    gossip_port = free_port()
    core = Node(
        tmp_path / "core",
        None,
        "--role",
        "core",
        "--gossip-port",
        str(gossip_port),
        "--key-dir",
        str(core_keys),
    ).start()
    worker = WorkerNode(
        tmp_path / "w", seeds=f"127.0.0.1:{gossip_port}", key_dir=worker_keys, memory_mib=256
    )
    try:
        worker.start()

        def alive() -> set[str]:
            _, body = core.request("GET", "/v1/nodes")
            return {
                n["name"] for n in body["data"] if n["role"] == "worker" and n["state"] == "alive"
            }

        wait_for(lambda: worker.name in alive(), 30, "the rotating worker joins")
        code = wat("fl_hello")
        status, body = core.upload("_", "hello", code)
        assert status == 201 and body["data"]["workers"] == 1, body
        for i in range(5):
            status, body = core.request(
                "POST",
                "/v1/fn/_/hello",
                json.dumps({"args": {"i": i}}).encode(),
                {"Content-Type": "application/json"},
            )
            assert (status, body) == (200, {"data": {"hello": {"i": i}}})
        assert hashlib.sha256(code).hexdigest() in cached_hashes(worker.data_dir)
        assert "key rotation: also accepting the keys in" in core.log()
        assert "key rotation: also accepting the keys in" in worker.log()
        # the worker answers with the new server key: the core found it in next/
        assert "trying the cluster's other server key" in core.log()
    finally:
        worker.stop()
        core.stop()


def test_a_server_mid_rotation_lets_in_both_client_keys_and_no_other(tmp_path: Path) -> None:
    cluster = generate_cluster_keys(tmp_path / "cluster")
    other = generate_cluster_keys(tmp_path / "other")

    def client_pair(keys: CurveConfig) -> CurveConfig:
        return CurveConfig(
            cluster.server_public, cluster.server_secret, keys.client_public, keys.client_secret
        )

    nextkeys = generate_cluster_keys(tmp_path / "next")
    rotating = dataclasses.replace(cluster, also_accept=(nextkeys.client_public,))

    async def pong(request: Message) -> Message:
        return Message("pong", request.id, {})

    async def main() -> None:
        server = RpcServer("tcp://127.0.0.1:0", pong, curve=rotating)
        await server.start()
        clients = [
            RpcClient(curve=cluster),
            RpcClient(curve=client_pair(nextkeys)),
            RpcClient(curve=client_pair(other)),
        ]
        try:
            for client in clients[:2]:
                reply = await client.call(server.endpoint, "ping", {}, timeout=5)
                assert reply.type == "pong"
            with pytest.raises(RpcTimeout):
                await clients[2].call(server.endpoint, "ping", {}, timeout=1)
            assert server.stats.auth_denied >= 1
        finally:
            for client in clients:
                await client.close()
            await server.close()

    asyncio.run(main())


def test_beacons_under_either_key_of_a_rotation_are_heard() -> None:
    old, new, foreign = os.urandom(32), os.urandom(32), os.urandom(32)
    verifier = BeaconVerifier(beacon_key(old), "me", also_accept=(beacon_key(new),))
    now = time.time()
    for key, name in ((old, "a"), (new, "b")):
        sealed = encode_beacon(
            beacon_key(key), Announcement(name, f"{name}:1"), now, os.urandom(16)
        )
        assert verifier.verify(sealed, now).name == name
    forged = encode_beacon(beacon_key(foreign), Announcement("c", "c:1"), now, os.urandom(16))
    with pytest.raises(BeaconRejected, match="bad-mac"):
        verifier.verify(forged, now)
