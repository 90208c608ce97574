"""The errors ``exec`` raises: one hierarchy, mapped to HTTP in one place (api)."""

from __future__ import annotations


class ExecError(Exception):
    """Base of everything that can go wrong running a function.

    Attributes:
        logs: what the function logged before it failed (set by the runtime).
        logs_truncated: whether some of it was dropped at the log cap.
        worker: the worker it failed on (set by the core's dispatcher).
    """

    logs: list[str]
    logs_truncated: bool = False
    worker: str = ""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.logs = []


class InvalidModule(ExecError):
    """The code is not a module fless can run (bad bytes, missing export, unknown import)."""


class FunctionError(ExecError):
    """The function itself reported an error (``__insert_error`` or a non-zero exit)."""


class FunctionTrap(ExecError):
    """The function trapped: unreachable, out-of-bounds access, stack overflow, ..."""


class MemoryLimitExceeded(FunctionTrap):
    """The function needed more linear memory than its ``memory`` setting allows."""


class OutputLimitExceeded(FunctionTrap):
    """The function wrote more output (response, stdout, logs) than allowed."""


class FunctionTimeout(ExecError):
    """The function ran past its time limit and was interrupted."""

    @classmethod
    def after(cls, timeout_s: float) -> FunctionTimeout:
        """The error of a run stopped at its time limit of ``timeout_s`` seconds."""
        return cls(f"function exceeded its timeout of {round(timeout_s * 1000)} ms")


class OverBudget(Exception):
    """A run given a budget shorter than its timeout went past the budget and was stopped.

    Not an ``ExecError``: it says nothing of the function, only that the
    caller should run it again where a long run is in nobody's way.
    """
