"""Linux network namespaces on a private bridge, for cluster tests across real "hosts".

``Lab`` builds, in the root namespace, a bridge holding 10.77.0.254/24 (so the
test process reaches every node directly) and N namespaces, the i-th with a
veth into the bridge, address 10.77.0.i/24, loopback up and a multicast route
(10.77.0 is SUBNET's default; a lab may be given another subnet).
Names carry the test process's pid, so runs never share a bridge; ``close``
removes every process, namespace and link the lab made, whatever happened.
Root only (``available`` says why not).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

BIN = Path(sys.executable).parent
# Another /24 for a second lab on the same machine (two checkouts testing at once).
SUBNET = os.environ.get("FLESS_TEST_LAB_SUBNET", "10.77.0")
BRIDGE_ADDRESS = f"{SUBNET}.254"
PREFIX = 24
# Beacons stay on the lab's bridge (TTL 1); one group per run all the same.
BEACON_GROUP = f"239.255.77.{os.getpid() % 250 + 1}"
BEACON_PORT = 7472
_STALE = re.compile(r"^fl(\d+)-ns\d+$")
_STALE_LINK = re.compile(r"^\d+: (fl-br(?P<bridge>\d+)|fl(?P<veth>\d+)v\d+)[:@]")


def ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    """Runs ``ip ARGS`` (inside ``netns`` if given); its stdout."""
    argv = ["ip", *args] if netns is None else ["ip", "netns", "exec", netns, "ip", *args]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def available() -> str | None:
    """None if this process can build a lab; otherwise why not."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network-namespace tests need root (CAP_NET_ADMIN, CAP_SYS_ADMIN); CI runs them"
    if shutil.which("ip") is None:
        return "'ip' not found: install the Debian package iproute2"
    probe = f"fl{os.getpid()}-probe"
    try:
        ip("netns", "add", probe)
    except RuntimeError as exc:
        return f"cannot create a network namespace here: {exc}"
    ip("netns", "del", probe, check=False)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_inside(ns: str) -> None:
    """SIGKILLs the processes still running in namespace ``ns`` (they keep it alive)."""
    pids = subprocess.run(
        ["ip", "netns", "pids", ns], capture_output=True, text=True, check=False
    ).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


def sweep_stale() -> None:
    """Removes namespaces and bridges left by lab runs whose process is gone (SIGKILL)."""
    for line in ip("netns", "list", check=False).splitlines():
        name = line.split()[0] if line.split() else ""
        found = _STALE.match(name)
        if found and not _alive(int(found.group(1))):
            _kill_inside(name)
            ip("netns", "del", name, check=False)
    for line in ip("-o", "link", "show", check=False).splitlines():
        found = _STALE_LINK.match(line)
        if found and not _alive(int(found["bridge"] or found["veth"])):
            ip("link", "del", found.group(1), check=False)


def subnet_users(subnet: str = SUBNET) -> list[str]:
    """Interfaces of the root namespace that hold an address in ``subnet`` (``A.B.C``)."""
    users = []
    for line in ip("-o", "-4", "addr", "show", check=False).splitlines():
        parts = line.split()
        if len(parts) > 3 and parts[3].startswith(f"{subnet}."):
            users.append(parts[1])
    return users


class Lab:
    """A bridge and ``count`` namespaces on it; processes started in them.

    Args:
        count: namespaces, numbered from 1 (the i-th has address SUBNET.i).
        logs: where process logs go.
        subnet: the lab's /24 as ``A.B.C``; a suite that must not share
            SUBNET with another lab on the machine passes its own and reaches
            the namespaces with ``host(i)``.
    """

    def __init__(self, count: int, logs: Path, subnet: str = SUBNET) -> None:
        if not 1 <= count <= 200:
            raise ValueError("between 1 and 200 namespaces")
        self.count = count
        self.subnet = subnet
        self.logs = logs
        tag = os.getpid()
        self.bridge = f"fl-br{tag}"
        self._tag = tag
        self._made_ns: list[str] = []
        self._made_bridge = False
        self._procs: list[subprocess.Popen[bytes]] = []

    def ns(self, i: int) -> str:
        """The name of namespace ``i``."""
        return f"fl{self._tag}-ns{i}"

    @staticmethod
    def address(i: int) -> str:
        """The address of namespace ``i`` of a lab on the default SUBNET."""
        return f"{SUBNET}.{i}"

    def host(self, i: int) -> str:
        """The address of namespace ``i`` of this lab, whatever its subnet."""
        return f"{self.subnet}.{i}"

    def open(self) -> Lab:
        """Builds the bridge and the namespaces (``close`` undoes a partial build too)."""
        sweep_stale()
        taken = subnet_users(self.subnet)
        if taken:
            raise RuntimeError(
                f"{self.subnet}.0/{PREFIX} is already in use in the root namespace by {taken}: "
                "another lab run, or something else; not touching it"
            )
        ip("link", "add", "name", self.bridge, "type", "bridge", "mcast_snooping", "0")
        self._made_bridge = True
        ip("addr", "add", f"{self.host(254)}/{PREFIX}", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        for i in range(1, self.count + 1):
            ns = self.ns(i)
            ip("netns", "add", ns)
            self._made_ns.append(ns)
            host_end = f"fl{self._tag}v{i}"
            # The namespace end is made inside it, so its name cannot clash.
            ip("link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("link", "set", host_end, "master", self.bridge)
            ip("link", "set", host_end, "up")
            ip("link", "set", "lo", "up", netns=ns)
            ip("addr", "add", f"{self.host(i)}/{PREFIX}", "dev", "eth0", netns=ns)
            ip("link", "set", "eth0", "up", netns=ns)
            ip("route", "add", "224.0.0.0/4", "dev", "eth0", netns=ns)
        return self

    def spawn(
        self, i: int, argv: Sequence[str], env: dict[str, str], log_name: str
    ) -> subprocess.Popen[bytes]:
        """Starts ``argv`` in namespace ``i``, in its own process group, logging to a file."""
        log_path = self.logs / f"{log_name}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.ns(i), *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self._procs.append(proc)
        return proc

    def run(
        self, i: int, argv: Sequence[str], env: dict[str, str] | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Runs ``argv`` in namespace ``i`` to its end."""
        return subprocess.run(
            ["ip", "netns", "exec", self.ns(i), *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )

    @staticmethod
    def stop(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
        """Ends ``proc``'s process group: SIGTERM, then SIGKILL."""
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout)
        # The leader may be gone while its children (API processes) linger.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)

    def close(self) -> None:
        """Stops every process, then removes the namespaces and the bridge."""
        for proc in reversed(self._procs):
            with contextlib.suppress(Exception):
                self.stop(proc)
        self._procs.clear()
        for ns in reversed(self._made_ns):
            _kill_inside(ns)
            ip("netns", "del", ns, check=False)
        for i in range(1, len(self._made_ns) + 1):
            # Gone with its namespace, unless the kernel is still tearing that down
            # (sockets of killed processes can keep it for minutes).
            ip("link", "del", f"fl{self._tag}v{i}", check=False)
        self._made_ns.clear()
        if self._made_bridge:
            ip("link", "del", self.bridge, check=False)
            self._made_bridge = False


def node_env(address: str, **extra: str) -> dict[str, str]:
    """The environment of a node at ``address``: no loopback settings, discovery on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLESS_")}
    env.update(
        {
            "FLESS_API_HOST": address,
            "FLESS_CLUSTER_RPC_HOST": address,
            "FLESS_CLUSTER_ADVERTISE_HOST": address,
            "FLESS_CLUSTER_DISCOVERY": "true",
            "FLESS_CLUSTER_BEACON_GROUP": BEACON_GROUP,
            "FLESS_CLUSTER_BEACON_PORT": str(BEACON_PORT),
        }
    )
    env.update(extra)
    return env
