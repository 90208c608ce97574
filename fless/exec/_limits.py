"""What one invocation may use, and what it produced."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from fless._units import MiB

# Wasmtime stores a table element in a pointer (its docs of ``Store.set_limits``).
TABLE_ELEMENT_BYTES = 8
# The instances a component may create in its store: a componentize-py
# (Python) component makes 14 core instances (measured on the Python
# template's hello), with one memory (the others import it) and two
# tables, all within a module's counts.
COMPONENT_INSTANCES = 32


@dataclass(frozen=True)
class Limits:
    """The caps of one invocation.

    Attributes:
        memory_bytes: linear memory the instance may hold in all (the cap of
            each of its ``memories``: Wasmtime limits every memory alone).
        timeout_s: wall time before the instance is interrupted.
        max_output_bytes: response (or stdout) size.
        max_log_bytes: console log and stderr kept; the rest is dropped.
        max_log_lines: log lines kept (one per console log call, stderr write
            or log of a component); the rest is dropped.
        http_allow: hosts ``__http_request`` may reach (function's and cluster's).
        http_timeout_s: time allowed for one outbound request.
        http_max_response_bytes: body size of one outbound response.
        table_elements: elements any one table may hold (initial or grown).
        tables: tables the invocation may create.
        memories: linear memories it may create (one for a module: the core
            refuses modules with more at upload).
        instances: instances it may create (one for a module, the core
            instances of a component).
        env: the environment it sees: ``(name, value)`` pairs, the secrets
            its metadata names (kept out of ``repr``, and so out of logs).
    """

    memory_bytes: int = 64 * MiB
    timeout_s: float = 10.0
    max_output_bytes: int = 4 * MiB
    max_log_bytes: int = 64 * 1024
    max_log_lines: int = 1000
    http_allow: frozenset[str] = frozenset()
    http_timeout_s: float = 5.0
    http_max_response_bytes: int = 4 * MiB
    table_elements: int = 100_000
    tables: int = 4
    memories: int = 1
    instances: int = 1
    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def instance_bytes(self) -> int:
        """The most memory an invocation can hold: every memory and every table at its cap.

        What the scheduler reserves on the worker for the call.
        """
        tables = self.tables * self.table_elements * TABLE_ELEMENT_BYTES
        return self.memories * self.memory_bytes + tables

    def for_abi(self, abi: str) -> Limits:
        """These limits with the instance counts an ABI needs (a component makes several)."""
        if abi != "component":
            return self
        return replace(self, instances=COMPONENT_INSTANCES)


@dataclass
class Outcome:
    """A successful run: the function's output bytes, what it logged, and where it ran.

    ``attempts`` counts the workers tried: more than one when the core
    retried a call whose worker was lost.
    """

    output: bytes
    logs: list[str] = field(default_factory=list)
    logs_truncated: bool = False
    worker: str = ""
    attempts: int = 1
