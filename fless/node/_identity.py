"""How a node names itself and which address it gives the others (no heavy imports)."""

from __future__ import annotations

import contextlib
import os
import socket

from fless.config import Settings


def advertise_host(settings: Settings) -> str:
    """The address other nodes use for this one."""
    cluster = settings.cluster
    if cluster.advertise_host:
        return cluster.advertise_host
    if cluster.rpc_host not in ("0.0.0.0", "::", ""):
        return cluster.rpc_host
    # The interface that routes towards a seed, or the LAN's multicast group
    # (connecting a UDP socket sends nothing).
    target = cluster.seeds[0].rpartition(":")[0] if cluster.seeds else cluster.beacon_group
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((target, 9))
        host: str = sock.getsockname()[0]
        return host
    return "127.0.0.1"


def bind_udp(host: str, port: int) -> int:
    """Binds a UDP socket to ``host:port`` and closes it; the port it got.

    A probe: with port 0 it finds a free port, with another it tells whether
    that one is free. ``host`` may be an IPv6 address in brackets.

    Raises:
        OSError: the address cannot be bound (taken, or not this machine's).
    """
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.bind((host, port))
        bound: int = probe.getsockname()[1]
        return bound


def node_name(role: str, settings: Settings) -> str:
    """A member name unique in the cluster: host name, role, address, and a port or the pid.

    The address is there because boards cloned from one image share a host
    name; the port or pid tells apart nodes on one machine.
    """
    suffix = settings.cluster.rpc_port if role == "worker" else os.getpid()
    return f"{socket.gethostname()}-{role}-{advertise_host(settings)}-{suffix}"
