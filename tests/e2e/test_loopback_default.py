"""A node started with no settings keeps to loopback: every socket of every process, no beacon.

The sockets are read from the kernel (``/proc``), for the gunicorn master
and each API process, once the node is up and its processes have met in
gossip: a listener, a gossip socket or a beacon on any other address fails.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e.node import BIN, free_port, wait_for

# /proc/net/tcp's state column: 0A is LISTEN.
LISTEN = "0A"


def _address(hex_address: str) -> tuple[str, int]:
    """``("127.0.0.1", 4000)`` from /proc/net's ``0100007F:0FA0`` (IPv6: 32 hex digits)."""
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    # Each 32-bit word is in the host's byte order (little-endian here).
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words)), int(port, 16)


def sockets_of(pid: int) -> list[tuple[str, str, int, str]]:
    """Every inet socket ``pid`` holds: (protocol, local host, local port, state)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        lines = Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            if fields[9] in inodes:
                host, port = _address(fields[1])
                found.append((proto, host, port, fields[3]))
    return found


class BareNode:
    """``fless-node`` with no setting at all: no flag but the port, no FLESS_* variable."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.log_path = root / "node.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> BareNode:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLESS_")}
        # Its data goes where a user's would, under a home of its own.
        env.update(HOME=str(self.root / "home"), XDG_DATA_HOME=str(self.root / "data"))
        env.pop("STATE_DIRECTORY", None)
        with open(self.log_path, "wb") as log:
            # The API port only: 4000 may be taken on a test machine.
            self.proc = subprocess.Popen(
                [str(BIN / "fless-node"), "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pids(self) -> list[int]:
        assert self.proc is not None
        pid = self.proc.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [pid, *map(int, children)]

    def nodes(self) -> list[dict[str, object]]:
        key = (self.root / "data" / "fless" / "admin.key").read_text().strip()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/v1/nodes", headers={"Authorization": f"Bearer {key}"})
            data: list[dict[str, object]] = json.loads(conn.getresponse().read())["data"]
            return data
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[BareNode]:
    node = BareNode(tmp_path).start()
    try:
        yield node
    finally:
        node.stop()


def _up(node: BareNode) -> bool:
    assert node.proc is not None
    assert node.proc.poll() is None, node.log()
    try:
        listed = node.nodes()
    except (OSError, ValueError):
        return False
    # Every API process is up and in gossip: all its sockets are open.
    return len(listed) == 1 and listed[0]["processes"] == len(node.pids()) - 1


def test_a_node_with_no_settings_listens_only_on_loopback(bare: BareNode) -> None:
    wait_for(lambda: _up(bare), 60, "the node up, its API processes met in gossip")
    held = {pid: sockets_of(pid) for pid in bare.pids()}
    everything = [s for found in held.values() for s in found]
    listening = [s for s in everything if s[0].startswith("udp") or s[3] == LISTEN]
    assert (("tcp", "127.0.0.1", bare.port, LISTEN)) in listening
    assert any(s[0] == "udp" for s in listening), held  # gossip is among them
    off_loopback = [s for s in everything if not ipaddress.ip_address(s[1]).is_loopback]
    assert off_loopback == [], held
    # No beacon: it binds the multicast group's port (a non-loopback address,
    # so it would have failed the check above), and the node says it sends none.
    assert not any(s[2] == 7472 for s in everything), held
    log = bare.log()
    assert f"API on http://127.0.0.1:{bare.port}/v1/," in log, log
    assert "no LAN beacon (loopback only: --lan serves the LAN)" in log, log
    assert "0.0.0.0" not in log, log
