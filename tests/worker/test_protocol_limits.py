"""Limits as they cross the wire: every field arrives as sent, and bad values are refused."""

from __future__ import annotations

import dataclasses
from typing import Any

import cbor2
import pytest

from fless.exec import Limits
from fless.worker import limits_from_fields, limits_to_fields


def test_every_field_arrives_as_sent_through_cbor() -> None:
    # Each field away from its default, so a field dropped on either side shows.
    values: dict[str, Any] = {
        f.name: (
            frozenset({"b.example", "a.example"})
            if f.name == "http_allow"
            else f.default * 3
            if isinstance(f.default, int | float)
            else f.default
        )
        for f in dataclasses.fields(Limits)
    }
    sent = Limits(**values)
    fields = cbor2.loads(cbor2.dumps(limits_to_fields(sent)))
    assert fields["http_allow"] == ["a.example", "b.example"]
    assert limits_from_fields(fields) == sent


def test_unknown_fields_are_ignored_and_missing_ones_defaulted() -> None:
    assert limits_from_fields({"timeout_s": 2, "from_a_newer_core": 1}) == Limits(timeout_s=2.0)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("timeout_s", 0),
        ("timeout_s", "5"),
        ("timeout_s", True),
        ("memory_bytes", 1.5),
        ("tables", -1),
        ("instances", False),
        ("http_allow", "a.example"),
        ("http_allow", [1]),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused(key: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"limits.{key}"):
        limits_from_fields({key: value})
