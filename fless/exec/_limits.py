"""What one invocation may use, and what it produced."""

from __future__ import annotations

from dataclasses import dataclass, field

MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """The caps of one invocation.

    Attributes:
        memory_bytes: linear memory the instance may hold in all.
        timeout_s: wall time before the instance is interrupted.
        max_output_bytes: response (or stdout) size.
        max_log_bytes: console log and stderr kept; the rest is dropped.
        max_log_lines: log lines kept (one per console log call, stderr write
            or log of a component); the rest is dropped.
        http_allow: hosts ``__http_request`` may reach (function's and cluster's).
        http_timeout_s: time allowed for one outbound request.
        http_max_response_bytes: body size of one outbound response.
    """

    memory_bytes: int = 64 * MiB
    timeout_s: float = 10.0
    max_output_bytes: int = 4 * MiB
    max_log_bytes: int = 64 * 1024
    max_log_lines: int = 1000
    http_allow: frozenset[str] = frozenset()
    http_timeout_s: float = 5.0
    http_max_response_bytes: int = 4 * MiB


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
