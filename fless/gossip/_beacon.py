"""Zero-configuration discovery on the LAN: a UDP multicast beacon.

Each node sends a small authenticated datagram (see ``_beacon_wire``) to a
multicast group every second or so and listens for others'. A new peer's
gossip address is handed to ``on_peer``, which joins it. The TTL is 1, so
beacons never leave the local network segment.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import random
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from ._beacon_wire import NONCE_BYTES, Announcement, BeaconVerifier, beacon_key, encode_beacon
from ._errors import BeaconRejected, GossipError

log = logging.getLogger(__name__)

DEFAULT_GROUP = "239.255.74.70"
DEFAULT_PORT = 7472

OnPeer = Callable[[str], Awaitable[None] | None]


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, beacon: Beacon) -> None:
        self._beacon = beacon

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self._beacon._received(data, str(addr[0]))

    def error_received(self, exc: Exception) -> None:
        log.debug("beacon: socket error: %s", exc)


class Beacon:
    """Announces this node on the LAN and reports other nodes of the same cluster.

    The positional order is ``group, port, key, announce, on_peer, interval``; ``key``,
    ``announce`` and ``on_peer`` are required.

    Args:
        group: the IPv4 multicast group.
        port: the UDP port, the same on every node.
        key: the 32-byte cluster key; beacons are authenticated with a key derived
            from it, so other clusters' and strangers' beacons are ignored.
        announce: this node's name and gossip address; a plain ``"host:port"`` string
            serves as both.
        on_peer: called with a peer's gossip address when its beacon is first heard,
            and again every ``repeat_after`` seconds while it keeps beaconing, so a
            failed join is retried. May be a coroutine function.
        interval: seconds between beacons, with 10% jitter.
        interface: the IPv4 address of the interface to beacon on; ``"0.0.0.0"``
            lets the kernel pick by its routes.
        repeat_after: seconds before the same peer is reported again.
        also_accept: other 32-byte cluster keys whose beacons are accepted (a
            key rotation's next or previous key); beacons are sent with ``key``.

    Raises:
        GossipError: a required argument is missing or an address is unusable.
    """

    def __init__(
        self,
        group: str = DEFAULT_GROUP,
        port: int = DEFAULT_PORT,
        key: bytes | None = None,
        announce: Announcement | str | None = None,
        on_peer: OnPeer | None = None,
        interval: float = 1.0,
        *,
        interface: str = "0.0.0.0",
        repeat_after: float = 10.0,
        also_accept: tuple[bytes, ...] = (),
    ) -> None:
        if key is None or announce is None or on_peer is None:
            raise GossipError("a beacon needs the cluster key, what to announce and on_peer")
        if len(key) != 32:
            raise GossipError(f"the cluster key must be 32 bytes, not {len(key)}")
        if isinstance(announce, str):
            announce = Announcement(announce, announce)
        try:
            if not ipaddress.IPv4Address(group).is_multicast:
                raise GossipError(f"beacon group {group} is not a multicast address")
            ipaddress.IPv4Address(interface)
        except ValueError as exc:
            raise GossipError(f"bad beacon address: {exc}") from None
        if interval <= 0:
            raise GossipError("beacon interval must be positive")
        self._key = beacon_key(key)
        self._announce = announce
        self._on_peer = on_peer
        self._group = group
        self._port = port
        self._interval = interval
        self._interface = interface
        self._repeat_after = repeat_after
        self._announced: set[str] = set()
        self._verifier = BeaconVerifier(
            self._key, announce.name, also_accept=tuple(beacon_key(k) for k in also_accept)
        )
        self._reported: dict[str, float] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._sender: asyncio.Task[None] | None = None
        self._callbacks: set[asyncio.Future[None]] = set()
        self._send_failing = False
        #: Datagrams refused, by reason: useful to tell "no peers" from "wrong key".
        self.rejected: Counter[str] = Counter()

    def _socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        try:
            # Several nodes on one host (tests, an "all" board beside a worker) share the port.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            # Bound to the group, the socket gets this group's datagrams only.
            sock.bind((self._group, self._port))
            iface = socket.inet_aton(self._interface)
            membership = socket.inet_aton(self._group) + iface
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            if self._interface != "0.0.0.0":
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, iface)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise GossipError(
                f"cannot listen for beacons on {self._group}:{self._port} via "
                f"{self._interface}: {exc} (set the beacon interface to this board's LAN "
                "address, or turn the beacon off)"
            ) from None
        return sock

    async def start(self) -> None:
        """Opens the socket, joins the group and starts beaconing.

        Raises:
            GossipError: the socket cannot be set up (no multicast route, port taken).
        """
        if self._transport is not None:
            raise GossipError("the beacon is already running")
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Receiver(self), sock=self._socket()
        )
        self._transport = transport
        self._sender = asyncio.create_task(self._send_forever(), name="gossip-beacon")
        log.info(
            "beacon: announcing %s at %s on %s:%d",
            self._announce.name,
            self._announce.address,
            self._group,
            self._port,
        )

    async def stop(self) -> None:
        """Stops beaconing and closes the socket."""
        sender, self._sender = self._sender, None
        transport, self._transport = self._transport, None
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        if transport is not None:
            transport.close()
        for pending in list(self._callbacks):
            pending.cancel()

    async def _send_forever(self) -> None:
        while True:
            self.send_once()
            await asyncio.sleep(self._interval * random.uniform(0.9, 1.1))

    def send_once(self) -> None:
        """Sends one beacon now."""
        if self._transport is None:
            return
        data = encode_beacon(self._key, self._announce, time.time(), os.urandom(NONCE_BYTES))
        try:
            self._transport.sendto(data, (self._group, self._port))
        except OSError as exc:
            if not self._send_failing:
                log.warning("beacon: cannot send to %s: %s; retrying", self._group, exc)
            self._send_failing = True
        else:
            self._send_failing = False

    def _received(self, data: bytes, source: str) -> None:
        try:
            found = self._verifier.verify(data, time.time())
        except BeaconRejected as exc:
            self.rejected[exc.reason] += 1
            if exc.reason != "own":
                log.debug("beacon: dropped a datagram from %s: %s", source, exc)
            return
        address = found.address
        host, _, port = address.rpartition(":")
        if host in ("0.0.0.0", "[::]"):
            # A node bound to every interface may announce the wildcard; it is reachable
            # at the address its beacon came from.
            address = f"{source}:{port}"
        now = time.monotonic()
        last = self._reported.get(address)
        if last is not None and now - last < self._repeat_after:
            return
        self._reported[address] = now
        if len(self._reported) > 1024:
            self._reported = {
                a: t for a, t in self._reported.items() if now - t < self._repeat_after
            }
        # A peer is news once: the reports every repeat_after that follow
        # (it is still there) are not worth a line each.
        if address in self._announced:
            log.debug("beacon: %s at %s is still there", found.name, address)
        else:
            if len(self._announced) >= 1024:
                self._announced.clear()
            self._announced.add(address)
            log.info("beacon: found %s at %s", found.name, address)
        self._report(address)

    def _report(self, address: str) -> None:
        try:
            result = self._on_peer(address)
        except Exception:
            log.exception("beacon: on_peer failed for %s", address)
            return
        if result is None:
            return
        future = asyncio.ensure_future(result)
        self._callbacks.add(future)
        future.add_done_callback(self._callback_done)

    def _callback_done(self, future: asyncio.Future[None]) -> None:
        self._callbacks.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.warning("beacon: on_peer failed: %s", future.exception())
