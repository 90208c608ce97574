"""How the API shows what the core recorded: recent invocations and function logs.

The core keeps entries as they were recorded (times in seconds since the
epoch; a remote worker's log entries as it sent them); what a client sees,
and in which types, is decided here.
"""

from __future__ import annotations

from typing import Any

from fless._time import iso_time


def public_invocation(entry: dict[str, Any]) -> dict[str, Any]:
    """A recorded invocation as the API shows it."""
    return {
        "id": entry["id"],
        "module": entry["module"],
        "name": entry["name"],
        "worker": entry["worker"],
        "outcome": entry["outcome"],
        "attempts": entry["attempts"],
        "started": iso_time(entry["started"]),
        "duration_ms": entry["duration_ms"],
    }


def public_log(entry: dict[str, Any]) -> dict[str, Any]:
    """A worker's log entry as the API shows it."""
    public = {
        "id": str(entry.get("id", "")),
        "started": iso_time(float(entry.get("started", 0.0))),
        "worker": str(entry.get("worker", "")),
        "outcome": str(entry.get("outcome", "")),
        "duration_ms": entry.get("duration_ms"),
        "logs": [str(line) for line in entry.get("logs", [])],
        "truncated": bool(entry.get("truncated", False)),
    }
    if entry.get("error"):
        public["error"] = str(entry["error"])
    return public
