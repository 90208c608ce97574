"""An invocation's caps: made from its record and the settings, and kept for the next call."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from fixtures.platform import local_platform

from fless.core import FunctionRecord


def _record(**changes: object) -> FunctionRecord:
    now = time.time()
    base = FunctionRecord(
        module="_",
        name="f",
        hash="0" * 64,
        size=1,
        abi="funless",
        memory_mib=64,
        timeout_ms=1000,
        http_allow=(),
        created=now,
        updated=now,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_caps_follow_every_field_they_come_from(tmp_path: Path) -> None:
    platform = local_platform(tmp_path)
    first = platform.limits(_record())
    assert platform.limits(_record()) is first  # kept, not made again
    assert platform.limits(_record(memory_mib=128)).memory_bytes == 128 << 20
    assert platform.limits(_record(timeout_ms=2500)).timeout_s == 2.5
    allowed = platform.limits(_record(http_allow=("api.example",))).http_allow
    assert "api.example" in allowed and "api.example" not in first.http_allow
    # A component's caps are not a module's (instances, for one).
    assert platform.limits(_record(abi="component")) != first
    # The caps of the first record have not moved.
    assert platform.limits(_record()) == first
    assert (first.memory_bytes, first.timeout_s) == (64 << 20, 1.0)
