"""The errors of the core's flows, each a thing a client did or asked for."""

from __future__ import annotations


class CoreError(Exception):
    """Base of the core's errors; the API maps each subclass to one status."""


class BadRequest(CoreError):
    """The request is malformed: a bad name, a bad setting, a bad body."""


class DefaultModuleKept(BadRequest):
    """The default module ``_`` is to be deleted or renamed; it always exists."""


class NotFound(CoreError):
    """The module, function or subject does not exist."""


class AlreadyExists(CoreError):
    """A module, function or subject of that name exists already."""


class NameRefused(CoreError):
    """A name FunLess's server refuses field by field (an Ecto changeset's 422).

    Args:
        detail: fless's sentence, as every error has.
        reason: FunLess's words for the ``name`` field ("has already been taken").
    """

    def __init__(self, detail: str, reason: str) -> None:
        super().__init__(detail)
        self.reason = reason


class InvalidName(NameRefused, BadRequest):
    """A module, function or subject name that breaks the naming rule."""


class NameTaken(NameRefused, AlreadyExists):
    """A module or subject of that name exists, or a rename's new name is taken.

    A new function whose name is taken is a plain ``AlreadyExists``: FunLess's
    server answers that one 409.
    """


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
