"""Units of size shared by every package: one definition, so they cannot drift."""

from __future__ import annotations

from typing import Final

#: Bytes in a mebibyte, the unit of every memory setting and cap.
MiB: Final = 1 << 20
