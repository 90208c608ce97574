"""A node's name, the address it gives the others, where it listens (no heavy imports)."""

from __future__ import annotations

import contextlib
import os
import socket

from fless._addresses import is_loopback
from fless.config import Settings, serves_lan

# A gossip member's name is at most 64 bytes; an API process's adds "/PID"
# (up to 8) and, once it moved back to its configured port, ".N".
MAX_NODE_NAME = 52


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
    """A node name unique in the cluster: host name, role, address, and a port or the pid.

    The address is there because boards cloned from one image share a host
    name; the port or pid tells apart nodes on one machine. Roles all and
    core take it in the gunicorn master, before the fork: its pid is the
    node's, and each API process gossips as a process of it (``fless.node._gossip``).
    """
    suffix = settings.cluster.rpc_port if role == "worker" else os.getpid()
    tail = f"-{role}-{advertise_host(settings)}-{suffix}"
    # A long host name gives way: the rest is what tells nodes apart.
    room = max(MAX_NODE_NAME - len(tail.encode()), 1)
    host = socket.gethostname().encode()[:room].decode(errors="ignore")
    return f"{host}{tail}"


def sends_beacon(settings: Settings, host: str) -> bool:
    """Whether the node announces itself on the LAN: discovery on, gossiping off loopback.

    A loopback node has nobody on the LAN to meet, and its beacon would
    announce an address no other machine can reach.
    """
    return settings.cluster.discovery and not is_loopback(host.strip("[]"))


def api_urls(settings: Settings) -> list[str]:
    """The URLs the REST API answers at: one per address for a host of every interface."""
    api = settings.api
    scheme = "https" if api.tls_certfile else "http"
    hosts = [api.host]
    if api.host in ("0.0.0.0", "::", ""):
        hosts = ["127.0.0.1", advertise_host(settings)]
    shown = dict.fromkeys(f"[{h}]" if ":" in h else h for h in hosts)
    return [f"{scheme}://{h}:{api.port}/v1/" for h in shown]


def where_it_listens(settings: Settings, keys: bool, rpc: str = "") -> str:
    """The ready line's account of every socket the node opens, and whether it sends beacons.

    Args:
        settings: the node's settings (gossip port as the API processes use it).
        keys: whether the node has the cluster keys (a beacon needs them).
        rpc: a worker's RPC endpoint as bound; empty for roles all and core,
            whose API processes only connect to workers.
    """
    cluster = settings.cluster
    host = advertise_host(settings)
    parts = []
    if settings.role != "worker":
        every = settings.api.host in ("0.0.0.0", "::")
        where = " and ".join(api_urls(settings))
        parts.append(
            f"API on {where}" + (f" (every interface, {settings.api.host})" if every else "")
        )
    if rpc:
        parts.append(f"RPC on {rpc}")
    if cluster.gossip_port:
        parts.append(f"gossip on {host}:{cluster.gossip_port} (UDP)")
    else:
        parts.append(f"gossip on {host} (UDP, a free port)")
    if sends_beacon(settings, host) and keys:
        parts.append(f"LAN beacon to {cluster.beacon_group}:{cluster.beacon_port}")
    else:
        parts.append("no LAN beacon")
    listing = ", ".join(parts)
    bound = [host, cluster.rpc_host] if settings.role == "worker" else [host, settings.api.host]
    if not serves_lan(settings) and all(is_loopback(h.strip("[]")) for h in bound):
        listing += " (loopback only: --lan serves the LAN)"
    return listing
