"""Secrets: values a subject stores once and its functions and bindings name.

A secret belongs to the subject who set it (see docs/SECURITY.md#secrets):
a function reads, through its environment, only the secrets its metadata
names, from the namespace of the subject whose secrets it uses (its
``secrets_of``), and bindings name them in their params as
``{"secret": NAME}``.

Values are sealed with ChaCha20-Poly1305 (an AEAD: a flipped byte fails to
open) under a storage key derived with HKDF-SHA256 from the cluster's
gossip key, never the gossip key itself. The associated data binds a
sealed value to its owner and name, so a value moved to another entry of
the store does not open there either. A sealed value names the key it was
sealed with (``kid``), so after a key rotation the values sealed under the
previous key still open; the next ``set`` seals with the current one.

Pure but for the cipher: no store, no I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._errors import BadRequest, CoreError
from ._records import check_name, is_name

# What a sealed value's format is; a later one may change the cipher.
SEAL_VERSION = 1
# A secret is a token, a password or a key in PEM: text, and not much of it.
MAX_SECRET_BYTES = 16 * 1024
# How many secrets one subject keeps, and how many a function may name.
MAX_SECRETS_PER_SUBJECT = 256
MAX_SECRETS_PER_FUNCTION = 32
_SALT = b"fless secrets v1"
_INFO_KEY = b"fless secret storage key"
_INFO_ID = b"fless secret storage key id"
_NONCE_BYTES = 12


class SecretMissing(BadRequest):
    """A function or binding names a secret its owner has not set (or has deleted)."""


class SecretUnreadable(CoreError):
    """A stored secret does not open: altered, or sealed under a key this node lacks."""


class SecretsOff(BadRequest):
    """This node has no cluster keys to seal secrets with."""


def _hkdf(master: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 (RFC 5869) of ``master``: one block is all fless needs."""
    prk = hmac.new(_SALT, master, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()[:length]


@dataclass(frozen=True)
class _StorageKey:
    kid: bytes
    key: bytes = field(repr=False)


class SecretKeys:
    """Seals and opens secret values under keys derived from the cluster's secret.

    Args:
        masters: the cluster's gossip keys, the one in use first, then those a
            key rotation still accepts (``keys/next``, ``keys/previous``).
    """

    def __init__(self, masters: Sequence[bytes]) -> None:
        if not masters:
            raise ValueError("no cluster key to derive the secrets' key from")
        self._keys = [
            _StorageKey(_hkdf(master, _INFO_ID, 8), _hkdf(master, _INFO_KEY)) for master in masters
        ]

    def __repr__(self) -> str:
        return f"SecretKeys({len(self._keys)} keys)"

    def seal(self, owner: str, name: str, value: str) -> dict[str, Any]:
        """``value`` sealed for ``owner``'s secret ``name``, as the store keeps it."""
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        current = self._keys[0]
        nonce = os.urandom(_NONCE_BYTES)
        sealed = ChaCha20Poly1305(current.key).encrypt(
            nonce, value.encode(), _associated(owner, name)
        )
        return {"v": SEAL_VERSION, "kid": current.kid, "nonce": nonce, "ct": sealed}

    def is_current(self, sealed: Mapping[str, Any]) -> bool:
        """Whether ``sealed`` was sealed under the key in use (not a rotation's other one)."""
        kid = sealed.get("kid")
        return isinstance(kid, bytes) and hmac.compare_digest(kid, self._keys[0].kid)

    def reseal(self, owner: str, name: str, sealed: Mapping[str, Any]) -> dict[str, Any] | None:
        """``sealed`` sealed again under the key in use; None when it is already, or does not open.

        After a key rotation, so that values outlive the old key's removal.
        """
        if self.is_current(sealed):
            return None
        try:
            return self.seal(owner, name, self.open(owner, name, sealed))
        except SecretUnreadable:
            return None

    def open(self, owner: str, name: str, sealed: Mapping[str, Any]) -> str:
        """The value ``seal`` sealed for ``owner``'s ``name``.

        Raises:
            SecretUnreadable: altered, moved, or sealed under a key this node lacks.
        """
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        kid, nonce, ct = sealed.get("kid"), sealed.get("nonce"), sealed.get("ct")
        if sealed.get("v") != SEAL_VERSION or not all(
            isinstance(x, bytes) for x in (kid, nonce, ct)
        ):
            raise SecretUnreadable(f"secret {name} of {owner} is not in a form this node reads")
        assert isinstance(nonce, bytes) and isinstance(ct, bytes)
        for key in self._keys:
            if not hmac.compare_digest(key.kid, kid):  # type: ignore[arg-type]
                continue
            try:
                plain = ChaCha20Poly1305(key.key).decrypt(nonce, ct, _associated(owner, name))
            except (InvalidTag, ValueError):
                break
            return plain.decode()
        raise SecretUnreadable(
            f"secret {name} of {owner} does not open with this cluster's keys "
            "(altered, or sealed under a key no longer accepted): set it again"
        )


def _associated(owner: str, name: str) -> bytes:
    return b"fless secret\0" + owner.encode() + b"\0" + name.encode()


def check_value(value: object) -> str:
    """A secret's value: text of at most ``MAX_SECRET_BYTES``, without NUL.

    An environment variable cannot hold a NUL, and a password is text.

    Raises:
        BadRequest: never quoting the value.
    """
    if not isinstance(value, str):
        raise BadRequest('a secret\'s value is a JSON string: {"value": "..."}')
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise BadRequest(
            "a secret's value must be UTF-8 text (it holds a lone surrogate)"
        ) from None
    if not value or size > MAX_SECRET_BYTES:
        raise BadRequest(f"a secret's value is 1 to {MAX_SECRET_BYTES} bytes, not {size}")
    if "\0" in value:
        raise BadRequest("a secret's value may not hold a NUL character")
    return value


def parse_names(raw: object) -> tuple[str, ...]:
    """The ``secrets`` of a function's metadata: distinct names, at most 32.

    Raises:
        BadRequest: naming what is wrong.
    """
    if not isinstance(raw, list) or len(raw) > MAX_SECRETS_PER_FUNCTION:
        raise BadRequest(
            f"metadata secrets must be a list of at most {MAX_SECRETS_PER_FUNCTION} secret names"
        )
    for name in raw:
        check_name("secret", name)
    if len(set(raw)) != len(raw):
        raise BadRequest("metadata secrets names a secret more than once")
    return tuple(raw)


def is_ref(value: object) -> bool:
    """Whether a binding param is a reference to a secret: ``{"secret": NAME}``."""
    return isinstance(value, dict) and len(value) == 1 and is_name(value.get("secret"))


def binding_refs(bindings: Sequence[Mapping[str, Any]]) -> Iterator[str]:
    """The secrets that bindings' params name (``{"secret": NAME}``, or a header's value)."""
    for binding in bindings:
        params = binding.get("params")
        if not isinstance(params, Mapping):
            continue
        for value in params.values():
            if is_ref(value):
                yield value["secret"]
            elif isinstance(value, Mapping):
                yield from (v["secret"] for v in value.values() if is_ref(v))


__all__ = [
    "MAX_SECRETS_PER_FUNCTION",
    "MAX_SECRETS_PER_SUBJECT",
    "MAX_SECRET_BYTES",
    "SecretKeys",
    "SecretMissing",
    "SecretUnreadable",
    "SecretsOff",
    "binding_refs",
    "check_value",
    "is_ref",
    "parse_names",
]
