"""Faults 5 and 6: gossip packet loss and a partition, with nftables inside namespaces.

Root only (as CI runs); each node is on its own namespace of a lab bridge
(``cluster.lan``). Rules go in a table of their own in one namespace and are
removed by deleting it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster.lan import CORE, GOSSIP_PORT, Net, start_lan
from e2e.node import wait_for
from fixtures.build import wat

WORKERS = (2, 3)
LOSS_SECONDS = float(os.environ.get("FLESS_TEST_LOSS_SECONDS", "120"))


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    if shutil.which("nft") is None and os.geteuid() == 0:
        pytest.fail("nft is missing: apt-get install nftables (make test installs it as root)")
    with start_lan(tmp_path_factory.mktemp("faults-net"), 3, WORKERS) as running:
        wait_for(
            lambda: set(running.alive_workers()) == {running.worker_name(i) for i in WORKERS},
            20,
            "both workers alive",
            every=0.2,
        )
        assert running.upload("f", wat("fl_hello"))[0] == 201
        yield running


def nft(net: Net, i: int, rules: str) -> None:
    """Loads ``rules`` (an nft script) in namespace ``i``."""
    path = Path(net.root) / f"rules-{i}.nft"
    path.write_text(rules)
    done = net.lab.run(i, ["nft", "-f", str(path)])
    assert done.returncode == 0, done.stderr


def clear(net: Net, i: int) -> None:
    done = net.lab.run(i, ["nft", "delete", "table", "inet", "fless_fault"])
    assert done.returncode == 0, done.stderr


def invoke(net: Net, query: str = "") -> tuple[int, str]:
    try:
        status, _, worker = net.request(
            "POST", f"/v1/fn/_/f{query}", b'{"args":{}}', {"Content-Type": "application/json"}
        )
    except OSError:
        return 0, ""
    return status, worker


def test_a_partition_between_the_core_and_a_worker_heals(net: Net) -> None:
    cut, other = net.worker_name(2), net.worker_name(3)
    # equal memory, ties go to the first name: worker 2 takes the calls
    assert invoke(net) == (200, cut)
    core = net.lab.host(CORE)
    nft(
        net,
        2,
        f"""
table inet fless_fault {{
  chain input {{ type filter hook input priority 0; ip saddr {core} drop; }}
  chain output {{ type filter hook output priority 0; ip daddr {core} drop; }}
}}
""",
    )
    try:
        # calls move to the other worker (retries carry the ones cut off)
        moved = wait_for(
            lambda: invoke(net, "?retries=2") == (200, other),
            20,
            "calls served by the other worker",
            every=0.2,
        )
        print(f"partition: calls moved after {moved:.1f} s")
    finally:
        clear(net, 2)
    back = wait_for(
        lambda: invoke(net) == (200, cut), 20, "the healed worker scheduled again", every=0.2
    )
    print(f"partition healed: worker scheduled again after {back:.1f} s")
    assert set(net.alive_workers()) == {cut, other}


def test_ten_percent_gossip_loss_kills_no_worker(net: Net) -> None:
    names = {net.worker_name(i) for i in WORKERS}
    wait_for(lambda: set(net.alive_workers()) == names, 20, "both workers alive", every=0.2)
    rules = f"""
table inet fless_fault {{
  chain input {{
    type filter hook input priority 0;
    udp dport {GOSSIP_PORT} numgen random mod 10 == 0 drop
  }}
}}
"""
    for i in (CORE, *WORKERS):
        nft(net, i, rules)
    calls = failures = 0
    worst = ""
    try:
        deadline = time.monotonic() + LOSS_SECONDS
        while time.monotonic() < deadline:
            nodes = net.nodes()
            for name in names:
                state = nodes[name]["state"] if name in nodes else "gone"
                assert state in ("alive", "suspect"), f"{name} is {state} under 10% loss"
                if state != "alive":
                    worst = f"{name} suspect"
            status, _ = invoke(net)
            calls += 1
            failures += status != 200
            time.sleep(0.25)
    finally:
        for i in (CORE, *WORKERS):
            clear(net, i)
    print(
        f"10% gossip loss for {LOSS_SECONDS:.0f} s: {calls} calls, {failures} failed; "
        f"{worst or 'never suspect'}"
    )
    assert failures == 0
