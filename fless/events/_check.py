"""Checks the events and sinks a create or update names: what they say, where, that they connect.

The core's ``Bindings``: each entry gets its own answer, FunLess's
``{"status": "success"}`` or an error entry that says why, and the function
keeps only the entries that passed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from fless.core import BadRequest, BindingCheck

from ._http import probe_couch, probe_http
from ._specs import (
    CouchSink,
    CronEvent,
    Event,
    HttpSink,
    MqttEvent,
    MqttSink,
    Sink,
    anonymous,
    names_secrets,
    parse_event,
    parse_sink,
    stored,
)
from ._topics import Refused


def host_of(binding: Event | Sink) -> str | None:
    """The host a binding connects to (None: it connects nowhere, as cron)."""
    if isinstance(binding, MqttEvent | MqttSink):
        return binding.broker.host
    if isinstance(binding, CouchSink | HttpSink):
        from urllib.parse import urlsplit

        return urlsplit(binding.url).hostname
    return None


def host_allowed(host: str, hosts: Sequence[str]) -> bool:
    """Whether ``events.hosts`` lets a binding connect to ``host``."""
    return "*" in hosts or host.lower().strip("[]") in {h.lower().strip("[]") for h in hosts}


# How ``probe`` begins its answer when the broker answered but refused.
_REFUSED = "the broker refused"
# Entries one create or update may send per kind: each is a connection
# checked while the request waits.
MAX_ENTRIES = 16


class Checker:
    """The event part's check of bindings, for ``Platform``.

    Args:
        hosts: the ``events.hosts`` allow-list (``"*"``: any).
        timeout_s: how long one entry's connection check may take.
        max_events: event bindings the core serves at most (``events.max_event_bindings``).
        served: how many event bindings the core's functions have now.
    """

    def __init__(
        self,
        hosts: Sequence[str],
        timeout_s: float,
        max_events: int = 256,
        served: Callable[[], int] = lambda: 0,
    ) -> None:
        self.hosts = tuple(hosts)
        self.timeout_s = timeout_s
        self.max_events = max_events
        self.served = served

    async def check(self, kind: str, entries: Sequence[object]) -> list[BindingCheck]:
        """Each entry's check, in order; the entries are checked at the same time.

        Raises:
            BadRequest: more than ``MAX_ENTRIES`` entries.
        """
        if len(entries) > MAX_ENTRIES:
            raise BadRequest(f"at most {MAX_ENTRIES} {kind} per request, not {len(entries)}")
        checks = list(await asyncio.gather(*(self._one(kind, e) for e in entries)))
        if kind != "events":
            return checks
        room = self.max_events - self.served()
        for i, check in enumerate(checks):
            if check.binding is None:
                continue
            if room <= 0:
                checks[i] = BindingCheck(
                    None,
                    f"this core serves at most {self.max_events} event bindings "
                    "(events.max_event_bindings)",
                )
            room -= 1
        return checks

    async def _one(self, kind: str, entry: object) -> BindingCheck:
        try:
            binding = parse_event(entry) if kind == "events" else parse_sink(entry)
        except Refused as exc:
            return BindingCheck(None, str(exc))
        host = host_of(binding)
        if host is not None and not host_allowed(host, self.hosts):
            return BindingCheck(None, f"host {host!r} is not in this cluster's events.hosts")
        # The probe's own timeouts cover the connection, not a name lookup
        # that hangs: the request waits no longer than this either way.
        try:
            async with asyncio.timeout(self.timeout_s + 1.0):
                error = await asyncio.to_thread(self._probe, binding)
        except TimeoutError:
            error = f"no answer from {host} within {self.timeout_s:g} s"
        if error is not None:
            return BindingCheck(None, error)
        return BindingCheck(stored(binding))

    def _probe(self, binding: Event | Sink) -> str | None:
        # A binding that names secrets is probed without them (the check
        # has no subject whose secrets to read): that its host answers (a
        # broker's refusal of the missing credentials is an answer; a
        # database's host takes a connection). Its own credentials are tried
        # at its first connection or delivery (GET fn shows how that went).
        if isinstance(binding, MqttEvent | MqttSink):
            from ._mqtt import probe  # paho: see _service's note on it

            if names_secrets(binding.broker):
                error = probe(anonymous(binding.broker), self.timeout_s)
                return None if error is not None and error.startswith(_REFUSED) else error
            return probe(binding.broker, self.timeout_s)
        if isinstance(binding, CouchSink):
            if names_secrets(binding):
                return probe_http(HttpSink(binding.url), self.timeout_s)
            return probe_couch(binding, self.timeout_s)
        if isinstance(binding, HttpSink):
            return probe_http(binding, self.timeout_s)
        assert isinstance(binding, CronEvent)
        return None
