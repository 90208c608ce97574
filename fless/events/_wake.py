"""Wake-ups between the API processes of a core: "an item is waiting in a queue".

A process that puts an item in a shared queue for any process to claim (its
own slots are full) tells the others at once, instead of leaving it until
their next look (up to ``IDLE_POLL_S``). Each process binds a Unix datagram
socket, ``<pid>.sock`` in ``data_dir/events/wake``; a wake-up is one
datagram naming the queue. A datagram that cannot be sent (a peer gone, or
with its buffer full, so awake already) is dropped: wake-ups only hurry
what the periodic look does anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("fless.events")


class Wakes:
    """This process's wake-up socket, and its peers' (see the module's doc).

    Args:
        folder: the folder of the sockets (made if missing).
        woken: called on the loop with each queue name a peer woke this process for.
    """

    def __init__(self, folder: Path, woken: Callable[[str], None]) -> None:
        folder.mkdir(mode=0o700, exist_ok=True)
        self._folder = folder
        self._woken = woken
        self._path = folder / f"{os.getpid()}.sock"
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._peers: list[str] = []

    def start(self) -> None:
        """Binds this process's socket and reads it on the running loop."""
        self._loop = asyncio.get_running_loop()
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()  # a dead process's, with this pid
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        sock.setblocking(False)
        sock.bind(str(self._path))
        self._sock = sock
        self._loop.add_reader(sock, self._read)
        self.refresh()

    def close(self) -> None:
        """Stops reading and removes this process's socket."""
        if self._sock is not None and self._loop is not None:
            self._loop.remove_reader(self._sock)
            self._sock.close()
            self._sock = None
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()

    def refresh(self) -> None:
        """Looks again for the other processes' sockets."""
        self._peers = [str(p) for p in self._folder.glob("*.sock") if p != self._path]

    def tell(self, queue: str) -> None:
        """Wakes the other processes for ``queue``."""
        if self._sock is None:
            return
        data = queue.encode()
        for peer in list(self._peers):
            try:
                self._sock.sendto(data, peer)
            except (ConnectionRefusedError, FileNotFoundError):
                # Its process died: forget the socket (a new process binds its own).
                self._peers.remove(peer)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(peer)
            except OSError:
                pass  # its buffer is full: it has wake-ups to read already

    def _read(self) -> None:
        assert self._sock is not None
        queues: set[str] = set()
        for _ in range(64):
            try:
                data = self._sock.recv(64)
            except (BlockingIOError, InterruptedError):
                break
            queues.add(data.decode(errors="replace"))
        for queue in queues:
            self._woken(queue)
