"""Checks the events and sinks a create or update names: what they say, where, that they connect.

The core's ``Bindings``: each entry gets its own answer, FunLess's
``{"status": "success"}`` or an error entry that says why, and the function
keeps only the entries that passed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fless.core import BindingCheck

from ._http import probe_couch, probe_http
from ._mqtt import probe
from ._specs import (
    CouchSink,
    CronEvent,
    Event,
    HttpSink,
    MqttEvent,
    MqttSink,
    Refused,
    Sink,
    parse_event,
    parse_sink,
    stored,
)


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


class Checker:
    """The event part's check of bindings, for ``Platform``.

    Args:
        hosts: the ``events.hosts`` allow-list (``"*"``: any).
        timeout_s: how long one entry's connection check may take.
    """

    def __init__(self, hosts: Sequence[str], timeout_s: float) -> None:
        self.hosts = tuple(hosts)
        self.timeout_s = timeout_s

    async def check(self, kind: str, entries: Sequence[object]) -> list[BindingCheck]:
        """Each entry's check, in order; the entries are checked at the same time."""
        return list(await asyncio.gather(*(self._one(kind, e) for e in entries)))

    async def _one(self, kind: str, entry: object) -> BindingCheck:
        try:
            binding = parse_event(entry) if kind == "events" else parse_sink(entry)
        except Refused as exc:
            return BindingCheck(None, str(exc))
        host = host_of(binding)
        if host is not None and not host_allowed(host, self.hosts):
            return BindingCheck(None, f"host {host!r} is not in this cluster's events.hosts")
        error = await asyncio.to_thread(self._probe, binding)
        if error is not None:
            return BindingCheck(None, error)
        return BindingCheck(stored(binding))

    def _probe(self, binding: Event | Sink) -> str | None:
        if isinstance(binding, MqttEvent | MqttSink):
            return probe(binding.broker, self.timeout_s)
        if isinstance(binding, CouchSink):
            return probe_couch(binding, self.timeout_s)
        if isinstance(binding, HttpSink):
            return probe_http(binding, self.timeout_s)
        assert isinstance(binding, CronEvent)
        return None
