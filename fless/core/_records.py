"""The core's records, their validation, and their encoding in the store."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, TypeGuard

import cbor2

from fless._time import iso_time

from ._errors import BadRequest, InvalidName

# Matched whole (fullmatch): with match, "$" would let a name end in a newline.
NAME_RE = re.compile(r"[_a-zA-Z0-9]{1,160}")
# A count in a query or an address: ASCII digits only (str.isdigit takes "²",
# which int() refuses), and few enough that int() is cheap.
_DECIMAL = re.compile(r"[0-9]{1,18}")
DEFAULT_MODULE = "_"
ROLE_ADMIN = "admin"
ROLE_USER = "user"


def check_name(kind: str, name: object) -> str:
    """Returns ``name`` if it is a valid module, function or subject name.

    Raises:
        InvalidName: naming the kind and the rule, and FunLess's reason.
    """
    if not is_name(name):
        raise InvalidName(
            f"invalid {kind} name {shown(name)}: use 1-160 characters from a-z, A-Z, 0-9 and _",
            _funless_reason(name),
        )
    return name


def _funless_reason(name: object) -> str:
    """What FunLess's changesets say of a name that is not valid."""
    if name is None or name == "":
        return "can't be blank"
    if not isinstance(name, str):
        return "is invalid"
    if len(name) > 160:
        return "should be at most 160 character(s)"
    return "must contain only alphanumeric characters and underscores"


def is_name(name: object) -> TypeGuard[str]:
    """Whether ``name`` is a valid module, function or subject name."""
    return isinstance(name, str) and NAME_RE.fullmatch(name) is not None


def parse_count(what: str, value: object, low: int, high: int) -> int:
    """An integer from ``low`` to ``high``: an int, or ASCII digits (a query parameter).

    Raises:
        BadRequest: naming ``what`` and the allowed range.
    """
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{what} must be an integer from {low} to {high}, not {shown(value)}")
    return value


def shown(value: object, most: int = 80) -> str:
    """``repr(value)`` cut to ``most`` characters, for an error message.

    A client's value may be megabytes long, or an integer too long for repr.
    """
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        text = f"a {type(value).__name__} too large to show"
    return text if len(text) <= most else text[: most - 3] + "..."


@dataclass(frozen=True)
class FunctionRecord:
    """A function as the store keeps it; its code is stored apart, by hash."""

    module: str
    name: str
    hash: str
    size: int
    abi: str
    memory_mib: int
    timeout_ms: int
    http_allow: tuple[str, ...]
    created: float
    updated: float
    # Added after the first release: records written before it decode with 0.
    retries: int = 0
    # The function's bindings as FunLess sends them ({"type": ..., "params":
    # {...}}, checked and normalized by the event part): what feeds it
    # invocations, and where its results go. Older records have none.
    events: tuple[dict[str, Any], ...] = ()
    sinks: tuple[dict[str, Any], ...] = ()
    # FunLess's ``capacity``, in KB, as given: kept and shown, never the
    # memory cap (None: not given; older records have none).
    capacity_kib: int | None = None
    # FunLess's ``tag``, which picks an APP script's tag, and the APP script
    # its calls are placed by when a call names none ("": none).
    tag: str = ""
    app: str = ""
    # Whether its public HTTP trigger (/fn/MODULE/NAME) answers callers
    # without a key; older records are not public.
    is_public: bool = False
    # The secrets its environment holds, by name, and the subject whose
    # secrets they (and its bindings' ``{"secret": NAME}``) are ("": none).
    secrets: tuple[str, ...] = ()
    secrets_of: str = ""

    def encode(self) -> bytes:
        """The record's bytes in the store."""
        data = asdict(self)
        data["http_allow"] = list(self.http_allow)
        return bytes(cbor2.dumps(data))

    @classmethod
    def decode(cls, raw: bytes) -> FunctionRecord:
        """The record ``encode`` wrote."""
        data = cbor2.loads(raw)
        data["http_allow"] = tuple(data["http_allow"])
        data["events"] = tuple(data.get("events", ()))
        data["sinks"] = tuple(data.get("sinks", ()))
        data["secrets"] = tuple(data.get("secrets", ()))
        return cls(**data)

    def public(self) -> dict[str, Any]:
        """The record as the API shows it."""
        return {
            "name": self.name,
            "module": self.module,
            "hash": self.hash,
            "size": self.size,
            "abi": self.abi,
            "memory": self.memory_mib,
            "timeout": self.timeout_ms,
            "http_allow": list(self.http_allow),
            "retries": self.retries,
            "capacity": self.capacity_kib,
            "tag": self.tag or None,
            "app": self.app or None,
            "public": self.is_public,
            "events": [_without_secrets(b) for b in self.events],
            "sinks": [_without_secrets(b) for b in self.sinks],
            "secrets": list(self.secrets),
            "secrets_of": self.secrets_of or None,
            "created": _iso(self.created),
            "updated": _iso(self.updated),
        }


@dataclass(frozen=True)
class Subject:
    """Someone who holds an API key: its name, role and the key's hash."""

    name: str
    role: str
    key_hash: str
    created: float

    def encode(self) -> bytes:
        """The subject's bytes in the store."""
        return bytes(cbor2.dumps(asdict(self)))

    @classmethod
    def decode(cls, raw: bytes) -> Subject:
        """The subject ``encode`` wrote."""
        return cls(**cbor2.loads(raw))

    def public(self) -> dict[str, Any]:
        """The subject as the API shows it (never the hash)."""
        return {"name": self.name, "role": self.role, "created": _iso(self.created)}


# Binding parameters never shown back: a broker's or database's password,
# and an HTTP sink's headers (which may carry a token).
SECRET_PARAMS = frozenset({"password", "headers"})


def _without_secrets(binding: dict[str, Any]) -> dict[str, Any]:
    params = binding.get("params", {})
    return {
        "type": binding.get("type"),
        "params": {
            k: "(hidden)" if k in SECRET_PARAMS and not _is_ref(v) else v for k, v in params.items()
        },
    }


def _is_ref(value: object) -> bool:
    """A secret's name in a binding (``{"secret": NAME}``), shown as it is: not a value."""
    return isinstance(value, dict) and len(value) == 1 and is_name(value.get("secret"))


def _iso(when: float) -> str:
    return iso_time(when, "seconds")
