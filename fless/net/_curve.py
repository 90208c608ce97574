"""The cluster's CURVE keys: how they are written, read and checked.

The model is one key pair per role, shared by the whole cluster: every node
holds the server pair (its ROUTER answers with it) and the client pair (its
DEALERs connect with it), and a server accepts only the cluster's client
public key. Holding the key directory is what makes a machine part of the
cluster: traffic is encrypted and peers are authenticated as members, but
not as one particular node, so a stolen directory means new keys for every
node. CURVE's per-connection short-term keys still keep recorded traffic
secret if the directory leaks later.

The files use ZeroMQ's certificate format (readable by
``zmq.auth.load_certificate`` and czmq tools): ``server.key`` and
``client.key`` hold the public keys, ``server.key_secret`` and
``client.key_secret`` both keys of each pair. All are written mode 0600.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import zmq
import zmq.auth

from ._errors import NetError

SERVER_KEY: Final = "server"
CLIENT_KEY: Final = "client"
_PUBLIC_SUFFIX: Final = ".key"
_SECRET_SUFFIX: Final = ".key_secret"
_Z85_KEY_LEN: Final = 40


@dataclass(frozen=True)
class CurveConfig:
    """The cluster's CURVE key material (Z85-encoded, as ZeroMQ takes it).

    Args:
        server_public: what clients check the server against.
        server_secret: what servers answer with.
        client_public: the client key servers accept, and clients connect with.
        client_secret: what clients connect with.
        also_accept: other client public keys servers accept: the next or
            previous key set while the cluster's keys are being rotated.
        also_servers: other server public keys a client tries when a server
            refuses the handshake under ``server_public`` (a rotation's other set).
    """

    server_public: bytes
    server_secret: bytes = field(repr=False)
    client_public: bytes
    client_secret: bytes = field(repr=False)
    also_accept: tuple[bytes, ...] = ()
    also_servers: tuple[bytes, ...] = ()

    @property
    def accepted_clients(self) -> tuple[bytes, ...]:
        """Every client public key a server lets in."""
        return (self.client_public, *self.also_accept)

    @property
    def server_keys(self) -> tuple[bytes, ...]:
        """The server public keys a client may expect, the one in use first."""
        return (self.server_public, *(k for k in self.also_servers if k != self.server_public))

    @classmethod
    def load(cls, directory: Path) -> CurveConfig:
        """Reads the keys ``generate_cluster_keys`` wrote to ``directory``.

        Raises:
            NetError: a file is missing, readable by others than its owner, or
                does not hold a valid key pair.
        """
        server_public, server_secret = _read_pair(directory, SERVER_KEY)
        client_public, client_secret = _read_pair(directory, CLIENT_KEY)
        return cls(server_public, server_secret, client_public, client_secret)


def generate_cluster_keys(directory: Path) -> CurveConfig:
    """Writes a new server pair and client pair for a cluster into ``directory``.

    The directory is created (mode 0700) if needed; every file is mode 0600.
    Copy the directory to every node of the cluster.

    Raises:
        FileExistsError: the directory already holds CURVE keys; they are
            left alone, since replacing them would cut this node off its cluster.
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name in (SERVER_KEY, CLIENT_KEY):
        for suffix in (_PUBLIC_SUFFIX, _SECRET_SUFFIX):
            if (directory / f"{name}{suffix}").exists():
                raise FileExistsError(f"{directory / (name + suffix)} exists; keys not replaced")
    server_public, server_secret = zmq.curve_keypair()
    client_public, client_secret = zmq.curve_keypair()
    _write_pair(directory, SERVER_KEY, server_public, server_secret)
    _write_pair(directory, CLIENT_KEY, client_public, client_secret)
    return CurveConfig(server_public, server_secret, client_public, client_secret)


def _write_pair(directory: Path, name: str, public: bytes, secret: bytes) -> None:
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    banner = f"#   fless cluster CURVE {name} key, generated {stamp}\n#   {{}}\nmetadata\ncurve\n"
    keep = "Copy this directory to every node of the cluster; keep it private."
    _write_private(
        directory / f"{name}{_PUBLIC_SUFFIX}",
        banner.format("Public key only. " + keep) + f'    public-key = "{public.decode()}"\n',
    )
    _write_private(
        directory / f"{name}{_SECRET_SUFFIX}",
        banner.format("SECRET. " + keep)
        + f'    public-key = "{public.decode()}"\n'
        + f'    secret-key = "{secret.decode()}"\n',
    )


def _write_private(path: Path, text: str) -> None:
    # O_EXCL: never follow a planted symlink or clobber a key another process wrote.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)


def _read_pair(directory: Path, name: str) -> tuple[bytes, bytes]:
    path = directory / f"{name}{_SECRET_SUFFIX}"
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise NetError(
            f"no CURVE key {path}: copy the cluster's key directory to this node "
            "(or generate one with 'fless-node keygen')"
        ) from None
    if stat.S_IMODE(mode) & 0o077:
        raise NetError(f"CURVE key {path} is readable by other users: run chmod 600 {path}")
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise NetError(f"cannot read CURVE key {path}: {exc}") from None
    if secret is None or len(public) != _Z85_KEY_LEN or len(secret) != _Z85_KEY_LEN:
        raise NetError(f"CURVE key {path} does not hold a Z85 public and secret key")
    try:
        derived = zmq.curve_public(secret)
    except (zmq.ZMQError, ValueError) as exc:
        raise NetError(f"CURVE key {path} holds an invalid secret key: {exc}") from None
    if derived != public:
        raise NetError(f"CURVE key {path}: its public key does not match its secret key")
    return public, secret
