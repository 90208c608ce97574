"""The cluster's keys: CURVE keys for RPC and the gossip key, in one directory.

``fless-node keygen`` writes them; a core (or an ``all`` node) writes them
at first start if the directory is empty. Every node of a cluster holds the
same directory. Without keys, a node runs in plaintext only on loopback or
with ``cluster.insecure``, and then says so in its log.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fless._addresses import is_loopback
from fless.config import Settings

if TYPE_CHECKING:
    from fless.net import CurveConfig

log = logging.getLogger("fless.node")

GOSSIP_KEY_FILE = "gossip.key"
# Key sets beside the one in use while the cluster's keys are rotated: a node
# accepts gossip, beacons and RPC clients under them, and sends with its own.
ROTATION_DIRS = ("next", "previous")


class KeyError_(RuntimeError):
    """The node cannot run with the keys it has (and says what to do)."""


@dataclass(frozen=True)
class ClusterKeys:
    """What a node encrypts with; None where it runs in plaintext.

    ``gossip_also`` are gossip keys accepted but never sent with (a rotation's
    other set); the CURVE equivalent is ``curve.also_accept``.
    """

    curve: CurveConfig | None
    gossip: bytes | None
    gossip_also: tuple[bytes, ...] = ()


def keygen(directory: Path) -> None:
    """Writes a new set of cluster keys (files readable by their owner only)."""
    from fless.net import generate_cluster_keys

    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    generate_cluster_keys(directory)
    path = directory / GOSSIP_KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")


def has_keys(directory: Path) -> bool:
    """Whether ``directory`` holds a gossip key (and so a full key set)."""
    return (directory / GOSSIP_KEY_FILE).exists()


def load_keys(settings: Settings, hosts: list[str]) -> ClusterKeys:
    """The keys this node uses, or plaintext where that is allowed.

    Args:
        settings: the node's settings (``cluster.key_dir``, ``cluster.insecure``).
        hosts: every address this node binds or reaches.

    Raises:
        KeyError_: no keys, and plaintext is not allowed.
    """
    directory = settings.key_path
    if has_keys(directory):
        return _load_with_rotation(directory)
    check_keys(settings, hosts)
    return ClusterKeys(None, None)


def _gossip_key(directory: Path) -> bytes:
    return bytes.fromhex((directory / GOSSIP_KEY_FILE).read_text().strip())


def _load_with_rotation(directory: Path) -> ClusterKeys:
    """The key set in ``directory``, accepting the sets in its ``next/`` and ``previous/``."""
    from fless.net import CurveConfig

    curve = CurveConfig.load(directory)
    gossip = _gossip_key(directory)
    gossip_also: list[bytes] = []
    clients_also: list[bytes] = []
    servers_also: list[bytes] = []
    for name in ROTATION_DIRS:
        other = directory / name
        if not has_keys(other):
            continue
        other_curve = CurveConfig.load(other)
        gossip_also.append(_gossip_key(other))
        clients_also.append(other_curve.client_public)
        # A ROUTER answers with one server key; a client that meets a server
        # already (or still) on the other set retries with that set's key.
        servers_also.append(other_curve.server_public)
        log.info(
            "key rotation: also accepting the keys in %s (gossip, beacons, RPC clients "
            "and servers)",
            other,
        )
    curve = dataclasses.replace(
        curve, also_accept=tuple(clients_also), also_servers=tuple(servers_also)
    )
    return ClusterKeys(curve, gossip, tuple(gossip_also))


def check_keys(settings: Settings, hosts: list[str]) -> None:
    """Whether the node may run: it has keys, or plaintext is allowed (logged).

    Raises:
        KeyError_: no keys, and plaintext is not allowed.
    """
    directory = settings.key_path
    if has_keys(directory):
        return
    if all(is_loopback(h) for h in hosts):
        log.warning("no cluster keys in %s: RPC and gossip run in plaintext on loopback", directory)
        return
    if settings.cluster.insecure:
        log.warning(
            "no cluster keys in %s and cluster.insecure is on: RPC and gossip run in "
            "plaintext; anyone on this network can join the cluster",
            directory,
        )
        return
    raise KeyError_(
        f"no cluster keys in {directory}: copy the keys directory of the core there "
        "(or run 'fless-node keygen' and copy it to every node), "
        "or set cluster.insecure = true on a trusted network"
    )
