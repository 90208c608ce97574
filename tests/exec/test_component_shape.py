"""The core's check of a component's outline (its sections), without compiling it."""

from __future__ import annotations

import pytest

from fless.exec import Abi, InvalidModule, inspect_code, validate_code

HEADER = b"\0asm\x0d\x00\x01\x00"
EXPORTS = b"\x0b\x01\x00"  # an export section (11) of one byte: no exports
CUSTOM = b"\x00\x03\x01a\x00"  # a custom section named "a"


def test_a_component_with_an_export_section_is_the_component_abi() -> None:
    assert inspect_code(HEADER + CUSTOM + EXPORTS) is Abi.COMPONENT
    assert validate_code(HEADER + EXPORTS) is Abi.COMPONENT


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"", "exports nothing"),
        (CUSTOM, "exports nothing"),
        (b"\x0b\x05\x00", "unexpected end"),
        (b"\x2a\x00", "unknown component section 42"),
    ],
)
def test_a_malformed_component_is_refused_with_the_reason(body: bytes, words: str) -> None:
    with pytest.raises(InvalidModule, match=words):
        inspect_code(HEADER + body)
