"""A cluster across network namespaces: discovery by the multicast beacon, and strangers kept out.

Each node runs in its own namespace on a private bridge (see ``netns``), as
on separate boards of one LAN: no loopback shortcuts, no seeds, real
multicast. Root only; skipped otherwise.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest
from cluster.lan import (
    CORE,
    GOSSIP_PORT,
    MEMORY_MIB,
    Net,
    keygen,
    rpc_port,
    start_lan,
)
from e2e.node import wait_for
from fixtures.build import wat

GOOD, STRANGER = (2, 3), 4


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    with start_lan(tmp_path_factory.mktemp("netns"), 4, GOOD) as running:
        yield running


def good_names(net: Net) -> set[str]:
    return {net.worker_name(i) for i in GOOD}


def test_workers_are_found_by_the_beacon_alone_and_serve(net: Net) -> None:
    try:
        wait_for(
            lambda: set(net.alive_workers()) == good_names(net),
            15,
            "both workers alive in the core's view",
            every=0.2,
        )
    except AssertionError:
        raise AssertionError(f"{net.nodes()}\n{net.logs()}") from None
    nodes = net.nodes()
    for i in GOOD:
        node = nodes[net.worker_name(i)]
        assert node["address"] == f"{net.lab.host(i)}:{GOSSIP_PORT}"
        assert node["rpc"] == f"tcp://{net.lab.host(i)}:{rpc_port(i)}"
        assert node["mem_total"] == MEMORY_MIB * 2**20
    # Nobody was given a seed: only the beacon can have introduced them.
    assert any("beacon: found" in net.log(n) for n in ("core", *(f"worker{i}" for i in GOOD)))

    status, body = net.upload("hello", wat("fl_hello"))
    assert status == 201, body
    assert body["data"]["workers"] == 2
    status, body, worker = net.invoke("hello", {"n": 1})
    assert (status, body) == (200, {"data": {"hello": {"n": 1}}})
    assert worker in good_names(net)


def test_a_stranger_without_the_keys_is_not_admitted(net: Net) -> None:
    wait_for(lambda: set(net.alive_workers()) == good_names(net), 15, "the good workers listed")
    assert net.upload("greet", wat("fl_hello"))[0] == 201
    own = net.root / "stranger-keys"
    keygen(own)
    seed = f"{net.lab.host(CORE)}:{GOSSIP_PORT}"
    net.start_worker(STRANGER, own, "--seeds", seed)
    stranger = net.worker_name(STRANGER)

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
        assert not any(
            n["address"].startswith(f"{net.lab.host(STRANGER)}:") for n in nodes.values()
        ), nodes
        status, body, worker = net.invoke("greet", {"k": 1})
        assert (status, body) == (200, {"data": {"hello": {"k": 1}}})
        landed.add(worker)
        time.sleep(0.5)
    assert landed <= good_names(net), landed
    assert set(net.alive_workers()) == good_names(net)

    # RPC: the stranger's keys get no answer from a good worker...
    out = net.ping(STRANGER, own, GOOD[0], timeout=2)
    assert "RPC-TIMEOUT" in out, out
    assert "handshake_failed=0" not in out, out  # refused by CURVE, not lost
    # ...while the cluster's keys, from the same namespace, do: it is the keys, not the network.
    copied = net.root / "copied-keys"
    shutil.copytree(net.keys, copied)
    out = net.ping(STRANGER, copied, GOOD[0], timeout=2)
    assert "RPC-REPLY pong" in out, out
