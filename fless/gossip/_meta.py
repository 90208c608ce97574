"""What a node tells the cluster about itself, and how that travels in gossip.

The encoding is compact JSON with one-letter keys: it fits the gossip
library's metadata limit (512 bytes with the tag around it) with room to
spare, and stays readable in a packet dump. Unknown keys are ignored on
decode, so a newer node can add fields without breaking older ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ._errors import MetaError

#: Roles a node can run, as in the configuration.
ROLES = ("core", "worker", "all")

#: Largest encoded metadata. The gossip layer wraps it in a tag of a few
#: bytes and refuses more than 512 in all.
MAX_ENCODED = 480

_KEYS = {"r": "role", "p": "rpc", "a": "arch", "t": "mem_total", "f": "mem_free", "v": "version"}
_INTS = ("mem_total", "mem_free")
# Beyond the first fields, which every node sends: left out when empty, and
# read as empty from a node that predates them.
_OPTIONAL = {"n": "worker_name", "l": "labels"}


@dataclass(frozen=True)
class NodeMeta:
    """A node's facts as every other node sees them.

    Attributes:
        role: ``"core"``, ``"worker"`` or ``"all"``.
        rpc: the ZeroMQ endpoint peers send requests to, e.g. ``"tcp://10.0.0.5:7470"``.
        arch: the machine architecture, e.g. ``"aarch64"``.
        mem_total: memory in bytes.
        mem_free: memory available for functions now, in bytes.
        version: the fless version the node runs.
        worker_name: the name APP scripts list a worker by; empty: its member name.
        labels: the labels APP scripts select a worker by.

    Raises:
        MetaError: a field has the wrong type or value, or the whole does not fit in gossip.
    """

    role: str
    rpc: str
    arch: str
    mem_total: int
    mem_free: int
    version: str
    worker_name: str = ""
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise MetaError(f"role must be one of {', '.join(ROLES)}, not {self.role!r}")
        for name in ("rpc", "arch", "version"):
            if not isinstance(getattr(self, name), str):
                raise MetaError(f"{name} must be a string")
        if not self.rpc and self.role == "worker":
            # A core reaches workers and serves none; only a worker must be reachable.
            raise MetaError("a worker's rpc must name its RPC endpoint")
        if not isinstance(self.worker_name, str):
            raise MetaError("worker_name must be a string")
        if not isinstance(self.labels, tuple) or not all(isinstance(x, str) for x in self.labels):
            raise MetaError("labels must be a tuple of strings")
        for name in _INTS:
            value = getattr(self, name)
            # bool is an int subclass; True bytes of memory is a bug, not a figure.
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise MetaError(f"{name} must be a non-negative integer of bytes, not {value!r}")
        size = len(self._json())
        if size > MAX_ENCODED:
            raise MetaError(f"metadata is {size} bytes encoded, over the {MAX_ENCODED}-byte limit")

    def _json(self) -> bytes:
        doc: dict[str, Any] = {short: getattr(self, long) for short, long in _KEYS.items()}
        for short, long in _OPTIONAL.items():
            value = getattr(self, long)
            if value:
                doc[short] = list(value) if isinstance(value, tuple) else value
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()

    def encode(self) -> bytes:
        """The metadata as compact UTF-8 JSON, at most ``MAX_ENCODED`` bytes."""
        return self._json()

    @classmethod
    def decode(cls, data: bytes) -> NodeMeta:
        """Reads what ``encode`` wrote.

        Raises:
            MetaError: ``data`` is not fless node metadata.
        """
        if len(data) > MAX_ENCODED:
            raise MetaError(f"metadata is {len(data)} bytes, over the {MAX_ENCODED}-byte limit")
        try:
            doc: Any = json.loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            raise MetaError(f"metadata is not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise MetaError("metadata must be a JSON object")
        missing = [long for short, long in _KEYS.items() if short not in doc]
        if missing:
            raise MetaError(f"metadata lacks {', '.join(missing)}")
        fields = {long: doc[short] for short, long in _KEYS.items()}
        if "n" in doc:
            fields["worker_name"] = doc["n"]
        if "l" in doc:
            labels = doc["l"]
            if not isinstance(labels, list):
                raise MetaError("labels must be a list of strings")
            fields["labels"] = tuple(labels)
        return cls(**fields)
