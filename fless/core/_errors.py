"""The errors of the core's flows, each a thing a client did or asked for."""

from __future__ import annotations


class CoreError(Exception):
    """Base of the core's errors; the API maps each subclass to one status."""


class BadRequest(CoreError):
    """The request is malformed: a bad name, a bad setting, a bad body."""


class NotFound(CoreError):
    """The module, function or subject does not exist."""


class AlreadyExists(CoreError):
    """A module, function or subject of that name exists already."""


class TooLarge(CoreError):
    """The upload or body exceeds its size limit."""


class Unauthorized(CoreError):
    """No key, or a key that matches no subject."""


class Forbidden(CoreError):
    """The subject may not use this route."""


class Busy(CoreError):
    """A queue is full: the request may be sent again later."""


class NoWorker(CoreError):
    """No worker can hold the function now."""


class WorkerLost(CoreError):
    """The chosen worker went away, or did not answer in time."""
