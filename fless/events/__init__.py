"""The event part of a core: what invokes functions besides HTTP, and where their results go.

FunLess's bindings (a function's ``events`` and ``sinks``) and more: MQTT
topics and cron schedules invoke a function, and its results go to
CouchDB, an HTTP endpoint or an MQTT topic, through durable queues, at least
once (docs/EVENTS.md). ``Checker`` is the core's ``Bindings`` (what a create
or update may bind); ``EventService`` runs them in an API process. It
imports only ``core`` (``tests/test_imports.py``); ``node`` wires it.
"""

from ._check import Checker
from ._service import EventService

__all__ = ["Checker", "EventService"]
