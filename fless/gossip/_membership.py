"""Membership over kinship (SWIM with Lifeguard). The only module that imports kinship.

kinship runs the protocol on its own thread, so a busy event loop never makes
this node look dead. This module turns its config, members and events into
fless's own ``Member`` and ``NodeMeta``; swapping the gossip library means
rewriting this file and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import re
from collections.abc import Callable, Sequence

import kinship

from fless._addresses import is_loopback

from ._errors import BindError, GossipError, JoinFailed, MetaError
from ._meta import NodeMeta
from ._timing import LAN_TIMING, GossipTiming
from ._view import Member, MemberView

log = logging.getLogger(__name__)

#: The metadata tag fless's ``NodeMeta`` travels in; the suffix is its schema version.
META_TAG = "fless/1"

#: Cluster label bound into every packet: other kinship users on the LAN are ignored.
CLUSTER_LABEL = "fless"

KEY_BYTES = 32


def host_port(host: str, port: int) -> str:
    """``"host:port"``, with IPv6 hosts in brackets."""
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


@functools.lru_cache(maxsize=1024)
def _decode_meta(raw: str) -> NodeMeta | None:
    # Cached: the scheduler reads every member's metadata on every invocation, and a
    # member's metadata changes far less often. A junk value is logged once, not per read.
    try:
        return NodeMeta.decode(raw.encode())
    except MetaError as exc:
        log.warning("a member advertises metadata fless cannot read (%s); it is ignored", exc)
        return None


def _member(m: kinship.Member) -> Member:
    raw = m.meta.get(META_TAG)
    meta = None if raw is None else _decode_meta(raw)
    return Member(m.name, m.addr, m.state.name.lower(), meta)


class Membership:
    """This node's seat in the cluster: who is there, in what state, advertising what.

    Args:
        name: this node's unique name, 1 to 64 UTF-8 bytes.
        bind_host: the IP address to gossip on (UDP and TCP on the same port).
        bind_port: the port; 0 lets the OS pick one, read back from ``port``.
        meta: what this node advertises at start.
        seeds: ``"host:port"`` of nodes to join at start. Unreachable seeds are not an
            error: the node starts alone and keeps retrying them in the background.
        key: the 32-byte cluster key. Gossip is encrypted and authenticated with it, so a
            node without it cannot join, read or inject anything. Required unless
            ``bind_host`` is a loopback address.
        also_accept: other 32-byte keys gossip is accepted under (never sent
            with): the next or previous cluster key while keys are rotated.
        on_change: called with a member whenever another node joins, becomes alive,
            suspect, dead or left, or changes its metadata. Never called for this node.
        advertise: the ``"host:port"`` others reach this node at, if not the bound one.
        timing: failure-detection and gossip timings.

    Raises:
        GossipError: the name, key, addresses or timings are unusable.
    """

    def __init__(
        self,
        name: str,
        bind_host: str,
        bind_port: int,
        meta: NodeMeta,
        *,
        seeds: Sequence[str] = (),
        key: bytes | None = None,
        also_accept: Sequence[bytes] = (),
        on_change: Callable[[Member], None] | None = None,
        advertise: str | None = None,
        timing: GossipTiming = LAN_TIMING,
    ) -> None:
        for each in (key, *also_accept) if key is not None else also_accept:
            if len(each) != KEY_BYTES:
                raise GossipError(f"the cluster key must be {KEY_BYTES} bytes, not {len(each)}")
        if also_accept and key is None:
            raise GossipError("keys to also accept need a cluster key to send with")
        if key is None and not is_loopback(bind_host.strip("[]")):
            raise GossipError(
                f"gossip on {bind_host} needs the cluster key: without it anyone on the "
                "network could join or forge membership (only loopback may run without)"
            )
        fields: dict[str, object] = {
            "name": name,
            "bind": host_port(bind_host, bind_port),
            "cluster": CLUSTER_LABEL,
            "seeds": list(seeds),
            "advertise": advertise,
            "probe_interval": timing.probe_interval,
            "probe_timeout": timing.probe_timeout,
            "suspicion_mult": timing.suspicion_mult,
            "suspicion_max_mult": timing.suspicion_max_mult,
            "gossip_interval": timing.gossip_interval,
            "push_pull_interval": timing.push_pull_interval,
            "rejoin_interval": timing.rejoin_interval,
            "tcp_timeout": timing.tcp_timeout,
            "resolve_timeout": timing.tcp_timeout,
            "join_retries": timing.join_retries,
            # local() turns the TCP fallback off; a LAN with a UDP-dropping switch wants it.
            "tcp_fallback_ping": True,
        }
        try:
            if key is None:
                self._config = kinship.Config.local(**fields)
            else:
                # kinship encrypts with the first key and decrypts with any.
                self._config = kinship.Config.lan(keys=[key, *also_accept], **fields)
        except kinship.ConfigError as exc:
            raise GossipError(f"bad gossip setting {exc.field or ''}: {exc}") from None
        self._name = name
        self._bind_port = bind_port
        self._meta = meta
        self._on_change = on_change
        self._timing = timing
        self._cluster: kinship.Cluster | None = None
        self._view = MemberView()
        self._meta_dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def name(self) -> str:
        """This node's name."""
        return self._name

    @property
    def port(self) -> int:
        """The gossip port, the one the OS picked if ``bind_port`` was 0 (once started)."""
        if self._cluster is None:
            return self._bind_port
        return int(self._cluster.local.addr.rsplit(":", 1)[1])

    @property
    def address(self) -> str:
        """The ``"host:port"`` other nodes reach this node at (once started)."""
        return self._running().local.addr

    @property
    def meta(self) -> NodeMeta:
        """What this node advertises, or will once the last ``set_meta`` has spread."""
        return self._meta

    def _running(self) -> kinship.Cluster:
        if self._cluster is None:
            raise GossipError("membership is not running; call start() first")
        return self._cluster

    async def start(self) -> None:
        """Binds, joins the seeds and starts following membership changes.

        Raises:
            BindError: the port is taken or the address is not this host's.
            GossipError: no seed name resolved.
        """
        if self._cluster is not None:
            raise GossipError("membership is already running")
        # Route kinship's logs into logging. Besides keeping operators' logs in one place,
        # this keeps kinship's thread from writing to stderr while Python shuts down, which
        # can crash the interpreter at exit in kinship 0.4.
        kinship.log_to_python()
        config = self._config.replace(meta={META_TAG: self._meta.encode().decode()})
        cluster = kinship.Cluster(config)
        try:
            await cluster.start()
        except OSError as exc:
            # kinship puts the errno in the message only: "... (os error 98)".
            code = exc.errno
            found = re.search(r"os error (\d+)", str(exc))
            if code is None and found:
                code = int(found.group(1))
            raise BindError(code, f"cannot gossip on {config.bind}: {exc}") from None
        except kinship.KinshipError as exc:
            raise GossipError(f"cannot start gossip on {config.bind}: {exc}") from None
        self._cluster = cluster
        # Subscribe first, then read the snapshot: the startup join happened before any
        # subscription could exist, and nothing may fall between the two.
        events = cluster.events()
        self._resync()
        self._meta_dirty.clear()
        self._tasks = [
            asyncio.create_task(self._follow(events), name=f"gossip-events-{self._name}"),
            asyncio.create_task(self._publish(), name=f"gossip-meta-{self._name}"),
        ]
        log.info("gossip: %s is up at %s", self._name, cluster.local.addr)

    async def stop(self) -> None:
        """Leaves the cluster, so others see this node as left at once, then closes."""
        cluster, self._cluster = self._cluster, None
        if cluster is None:
            return
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        try:
            await cluster.leave(self._timing.leave_timeout)
        except kinship.KinshipClosed:
            pass
        finally:
            await cluster.close()
        log.info("gossip: %s left the cluster", self._name)

    async def join(self, address: str) -> None:
        """Joins the cluster through the node at ``address`` (``"host:port"``).

        Raises:
            JoinFailed: the address is malformed, or no node answered there (down,
                wrong port, or holding another cluster key).
        """
        cluster = self._running()
        try:
            await cluster.join([address])
        except kinship.JoinError as exc:
            raise JoinFailed(
                f"could not join through {address}: {exc} (is a node up there, on that "
                "port, with the same cluster key?)"
            ) from None
        except ValueError as exc:
            raise JoinFailed(f"could not join through {address!r}: {exc}") from None

    def members(self) -> list[Member]:
        """Every member this node knows, itself included, with dead and left ones
        until the gossip layer forgets them (30 s after they went).

        Raises:
            GossipError: membership is not running.
        """
        cluster = self._running()
        found = {m.name: m for m in cluster.members()}
        for name in self._view.names():
            if name not in found:
                tombstone = cluster.member(name)
                if tombstone is None:
                    self._view.forget(name)
                else:
                    found[name] = tombstone
        return [_member(m) for m in found.values()]

    def counters(self) -> dict[str, int]:
        """The gossip layer's counters: packets received, and dropped by cause
        (``decode_errors``, ``decrypt_failures``, ``replays_dropped``, ...).

        Raises:
            GossipError: membership is not running.
        """
        stats = self._running().stats()
        return {name: int(value) for name, value in dataclasses.asdict(stats).items()}

    def set_meta(self, meta: NodeMeta) -> None:
        """Advertises ``meta`` from now on, e.g. when free memory changed.

        Returns at once; the change is gossiped in the background and only the newest
        value is sent, so calling this often costs little. Call it from the event loop
        this membership runs on.
        """
        self._meta = meta
        if self._cluster is not None:
            self._meta_dirty.set()

    async def _publish(self) -> None:
        cluster = self._running()
        while True:
            await self._meta_dirty.wait()
            self._meta_dirty.clear()
            try:
                await cluster.set_meta({META_TAG: self._meta.encode().decode()})
            except kinship.KinshipError as exc:
                log.error("gossip: could not advertise new metadata: %s", exc)

    async def _follow(self, events: kinship.EventStream) -> None:
        try:
            async for event in events:
                match event:
                    case kinship.EventsLost(count=count):
                        log.warning("gossip: %d membership events were dropped; resyncing", count)
                        self._resync()
                    case kinship.NameConflict(member=m, other_addr=other):
                        log.error(
                            "gossip: two nodes claim the name %s (%s and %s); give each "
                            "node its own name",
                            m.name,
                            m.addr,
                            other,
                        )
                    case kinship.UserMessage():
                        pass
                    case _:
                        member = _member(event.member)
                        self._view.update(member)
                        self._notify(member)
        except kinship.KinshipClosed:
            log.error("gossip: the membership layer stopped on an internal error")

    def _resync(self) -> None:
        cluster = self._running()
        others = [_member(m) for m in cluster.members() if m.name != self._name]
        for member in self._view.resync(others):
            self._notify(member)

    def _notify(self, member: Member) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change(member)
        except Exception:
            log.exception("gossip: on_change failed for member %s", member.name)
