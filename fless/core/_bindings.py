"""What the core asks of the event part: checks of bindings, and invocations run later.

FunLess's create and update take ``events`` (what invokes the function: an
MQTT topic, a cron schedule) and ``sinks`` (where its results go). The core
stores them in the function's record; what they mean, and whether one can
connect, is the event part's (``fless.events``), which the node hands to the
platform as its ``Bindings``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ._records import FunctionRecord

# The two kinds of binding, as FunLess's multipart fields name them.
KINDS = ("events", "sinks")


@dataclass(frozen=True)
class BindingCheck:
    """What came of one entry of a function's ``events`` or ``sinks``.

    Attributes:
        binding: the entry as it is kept (``{"type": ..., "params": {...}}``,
            normalized), or None when it was refused.
        error: why it was refused, or None.
    """

    binding: dict[str, Any] | None
    error: str | None = None

    def public(self) -> dict[str, str]:
        """The entry's status as FunLess answers it."""
        if self.error is None:
            return {"status": "success"}
        return {"status": "error", "message": self.error}


class Bindings(Protocol):
    """Checks bindings before they are kept (the event part)."""

    async def check(self, kind: str, entries: Sequence[object]) -> list[BindingCheck]:
        """Checks each entry: its type and params, and that it can connect now.

        Args:
            kind: ``"events"`` or ``"sinks"``.
            entries: the list the client sent, one result per entry, in order.
        """
        ...


class EventPart(Protocol):
    """What the core asks of the running event part: queued invocations, bindings' state."""

    def enqueue(
        self, module: str, name: str, args: bytes, invocation: str, callback: str | None
    ) -> None:
        """Queues one invocation of ``module/name`` under the id ``invocation``.

        Raises:
            Busy: the queue is full.
            BadRequest: ``callback`` is not a URL fless may post to.
        """
        ...

    def status(self, invocation: str) -> dict[str, Any] | None:
        """What became of a queued invocation: ``state``, and its result or error once done.

        Returns:
            None if no such invocation is known (or its record expired).
        """
        ...

    def binding_states(self, record: FunctionRecord) -> dict[str, Any]:
        """How the function's bindings fare now, for ``GET`` of the function.

        Returns:
            ``{"events": [...], "sinks": [...], "outbox": n}``: one state per
            binding, in the record's order, and the results waiting for sinks.
        """
        ...
