"""The event part of a core: what invokes functions besides HTTP, and where their results go.

FunLess's bindings (a function's ``events`` and ``sinks``) and more: MQTT
topics and cron schedules invoke a function, and its results go to
CouchDB, an HTTP endpoint or an MQTT topic, through durable queues, at least
once (docs/EVENTS.md). ``Checker`` is the core's ``Bindings`` (what a create
or update may bind); ``EventService`` runs them in an API process. It
imports only ``core`` (``tests/test_imports.py``); ``node`` wires it.
``check_topic`` is the topic rule the CLI checks before it sends anything.
"""

from typing import TYPE_CHECKING

from fless._lazy import lazy_names

from ._topics import Refused, check_topic

# Loaded on first use: they pull in the core, LMDB and paho, which the CLI
# (importing check_topic) has no use for.
__getattr__ = lazy_names(__name__, {"Checker": "_check", "EventService": "_service"})

if TYPE_CHECKING:
    from ._check import Checker
    from ._service import EventService

__all__ = ["Checker", "EventService", "Refused", "check_topic"]
