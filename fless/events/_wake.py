"""Wake-ups between the API processes of a core: "an item is waiting in a queue".

A process that puts an item in a shared queue for any process to claim (its
own slots are full) tells the others at once, instead of leaving it until
their next look (up to ``IDLE_POLL_S``). Each process binds a Unix datagram
socket in Linux's abstract namespace, named after the folder and its pid
(a path in the data directory could pass the 107 bytes a socket's path may
have), and leaves a file named after its pid in ``data_dir/events/wake``
for the others to find it by; a wake-up is one datagram naming the queue.
A datagram that cannot be sent (a peer gone, or with its buffer full, so
awake already) is dropped, and one from anyone else costs a look at the
queue and nothing more: wake-ups only hurry what the periodic look does
anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
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
        self._prefix = (
            b"\0fless-wake-" + hashlib.sha256(bytes(folder.resolve())).digest()[:8].hex().encode()
        )
        self._pid = os.getpid()
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._peers: list[int] = []

    def start(self) -> None:
        """Binds this process's socket and reads it on the running loop."""
        self._loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        sock.setblocking(False)
        try:
            sock.bind(self._address(self._pid))
        except OSError as exc:
            # The others still find this process's items by looking.
            log.warning("events: no wake-ups between processes: %s", exc)
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

    def tell(self, queue: str) -> bool:
        """Wakes the other processes for ``queue``; whether there was any to wake."""
        if self._sock is None:
            return False
        data = queue.encode()
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
