"""Wake-ups between the API processes of a node: "look at this now".

A process that has just done what the others would otherwise find at their
next look tells them at once. The events use it for "an item is waiting in
a queue" (its own slots are full; ``events/_lane.py``), and role ``all`` for
"this code is compiled" (``worker/_executor.LocalWorker.preload``). Each
process binds a Unix datagram socket in Linux's abstract namespace, named
after the folder and its pid (a path in the data directory could pass the
107 bytes a socket's path may have), and leaves a file named after its pid
in the folder for the others to find it by; a wake-up is one datagram naming
what to look at. A datagram that cannot be sent (a peer gone, or with its
buffer full, so awake already) is dropped: wake-ups only hurry what would
happen anyway.

An abstract socket has no file permissions: any local user may send to it.
The kernel tells who sent each datagram (``SO_PASSCRED``), and one from
another user is dropped unread. Another process of the node's own user
costs a look at most: the names are checked by whoever is woken (a code
hash that is not one is refused before any lookup).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import struct
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("fless.node")

# SCM_CREDENTIALS: the sender's pid, uid and gid.
_CREDENTIALS = struct.Struct("=iII")
_ANCILLARY = socket.CMSG_SPACE(_CREDENTIALS.size)


class Wakes:
    """This process's wake-up socket, and its peers' (see the module's doc).

    Args:
        folder: the folder of the sockets (made if missing).
        woken: called on the loop with each name a peer woke this process for.
    """

    def __init__(self, folder: Path, woken: Callable[[str], None]) -> None:
        folder.mkdir(mode=0o700, exist_ok=True)
        self._folder = folder
        self._woken = woken
        self._prefix = (
            b"\0fless-wake-" + hashlib.sha256(bytes(folder.resolve())).digest()[:8].hex().encode()
        )
        self._pid = os.getpid()
        self._uid = os.getuid()
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._peers: list[int] = []

    def start(self) -> None:
        """Binds this process's socket and reads it on the running loop."""
        self._loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            sock.bind(self._address(self._pid))
        except OSError as exc:
            # The others still find what this process did by looking.
            log.warning("no wake-ups between API processes in %s: %s", self._folder, exc)
            sock.close()
            return
        self._sock = sock
        (self._folder / str(self._pid)).touch()
        self._loop.add_reader(sock, self._read)
        self.refresh()

    def close(self) -> None:
        """Stops reading and removes this process's socket."""
        if self._sock is not None and self._loop is not None:
            self._loop.remove_reader(self._sock)
            self._sock.close()
            self._sock = None
            with contextlib.suppress(FileNotFoundError):
                (self._folder / str(self._pid)).unlink()

    def refresh(self) -> None:
        """Looks again for the other processes."""
        self._peers = [
            int(p.name)
            for p in self._folder.iterdir()
            if p.name.isdigit() and int(p.name) != self._pid
        ]

    def _address(self, pid: int) -> bytes:
        return self._prefix + b"-%d" % pid

    def tell(self, name: str) -> bool:
        """Wakes the other processes for ``name``; whether there was any to wake."""
        if self._sock is None:
            return False
        data = name.encode()
        for peer in list(self._peers):
            try:
                self._sock.sendto(data, self._address(peer))
            except ConnectionRefusedError:
                # Its process died (nothing is bound to its name): forget it.
                self._peers.remove(peer)
                with contextlib.suppress(FileNotFoundError):
                    (self._folder / str(peer)).unlink()
            except OSError:
                pass  # its buffer is full: it has wake-ups to read already
        return bool(self._peers)

    def tell_all(self, name: str) -> bool:
        """``tell``, after looking again for the other processes (one may have started since)."""
        self.refresh()
        return self.tell(name)

    def _read(self) -> None:
        assert self._sock is not None
        names: set[str] = set()
        for _ in range(64):
            try:
                data, ancillary, _, _ = self._sock.recvmsg(128, _ANCILLARY)
            except (BlockingIOError, InterruptedError):
                break
            if self._from_this_user(ancillary):
                names.add(data.decode(errors="replace"))
        for name in names:
            self._woken(name)

    def _from_this_user(self, ancillary: list[tuple[int, int, bytes]]) -> bool:
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                return bool(_CREDENTIALS.unpack_from(data)[1] == self._uid)
        return False
