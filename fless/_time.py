"""The one way fless writes a time: ISO 8601 in UTC."""

from __future__ import annotations

import datetime


def iso_time(epoch: float, timespec: str = "milliseconds") -> str:
    """An epoch time as ISO 8601 in UTC (``timespec`` as ``datetime.isoformat`` takes it)."""
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).isoformat(timespec=timespec)
