"""Reading a Wasm binary's imports and exports without compiling it.

The core checks every upload (magic bytes, version, the import and export
sections) so that it can refuse a module and detect its ABI without paying for
a compile; only the workers compile. This is a reader for the few sections it
needs, not a validator: Wasmtime's validator runs too (``validate_code``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

MAGIC = b"\x00asm"
VERSION_MODULE = b"\x01\x00\x00\x00"
# A component (the component model) has the same magic and layer 1.
VERSION_COMPONENT = b"\x0d\x00\x01\x00"

_SECTION_IMPORT = 2
_SECTION_EXPORT = 7
_KIND_NAMES = {0: "func", 1: "table", 2: "memory", 3: "global", 4: "tag"}


class BinaryFormatError(ValueError):
    """The bytes are not a WebAssembly module fless can read."""


@dataclass(frozen=True)
class Import:
    """One import of a module: where from, what, and of which kind."""

    module: str
    name: str
    kind: str


@dataclass(frozen=True)
class Export:
    """One export of a module."""

    name: str
    kind: str


@dataclass(frozen=True)
class ModuleShape:
    """What a module needs from its host and what it offers."""

    imports: tuple[Import, ...]
    exports: tuple[Export, ...]

    def exports_func(self, name: str) -> bool:
        """Whether the module exports a function called ``name``."""
        return any(e.name == name and e.kind == "func" for e in self.exports)


class _Reader:
    def __init__(self, data: bytes, start: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = start
        self.end = len(data) if end is None else end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise BinaryFormatError("unexpected end of data")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def u32(self) -> int:
        result = 0
        for shift in range(0, 35, 7):
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                if result > 0xFFFFFFFF:
                    raise BinaryFormatError("integer too large")
                return result
        raise BinaryFormatError("integer representation too long")

    def skip(self, count: int) -> None:
        if self.pos + count > self.end:
            raise BinaryFormatError("unexpected end of data")
        self.pos += count

    def name(self) -> str:
        length = self.u32()
        start = self.pos
        self.skip(length)
        try:
            return self.data[start : self.pos].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BinaryFormatError("a name is not valid UTF-8") from exc

    def limits(self) -> None:
        flags = self.byte()
        self.u32()
        if flags & 0x01:
            self.u32()

    def import_desc(self) -> str:
        kind = self.byte()
        if kind == 0:  # function: type index
            self.u32()
        elif kind == 1:  # table: reftype + limits
            self.byte()
            self.limits()
        elif kind == 2:  # memory: limits
            self.limits()
        elif kind == 3:  # global: valtype + mutability
            self.byte()
            self.byte()
        elif kind == 4:  # tag: attribute + type index
            self.byte()
            self.u32()
        else:
            raise BinaryFormatError(f"unknown import kind {kind}")
        return _KIND_NAMES[kind]


_COMPONENT_SECTION_EXPORT = 11
_COMPONENT_SECTION_LAST = 12  # value section; 0 is custom


def sections(data: bytes, start: int, end: int | None = None) -> Iterator[tuple[int, _Reader]]:
    """The sections that lie in ``data[start:end]``: each one's id and a reader of its body.

    Raises:
        BinaryFormatError: a section header or size runs past the end.
    """
    reader = _Reader(data, start, end)
    while reader.pos < reader.end:
        section = reader.byte()
        size = reader.u32()
        body_start = reader.pos
        reader.skip(size)
        yield section, _Reader(data, body_start, body_start + size)


def is_component(data: bytes) -> bool:
    """Whether ``data`` starts like a Wasm component rather than a core module."""
    return data[:4] == MAGIC and data[4:8] == VERSION_COMPONENT


def check_component(data: bytes) -> None:
    """Checks a component's section framing and that it exports something.

    Only the outline: Wasmtime checks the rest when a worker compiles it.

    Raises:
        BinaryFormatError: truncated or unknown sections, or no exports.
    """
    reader = _Reader(data, 8)
    exports = False
    while reader.pos < reader.end:
        section = reader.byte()
        if section > _COMPONENT_SECTION_LAST:
            raise BinaryFormatError(f"unknown component section {section}")
        reader.skip(reader.u32())
        exports = exports or section == _COMPONENT_SECTION_EXPORT
    if not exports:
        raise BinaryFormatError("the component exports nothing")


def read_shape(data: bytes) -> ModuleShape:
    """Reads the imports and exports of a core Wasm module.

    Args:
        data: the module's bytes.

    Returns:
        The module's imports and exports in declaration order.

    Raises:
        BinaryFormatError: not Wasm, a component, or truncated sections.
    """
    if len(data) < 8 or data[:4] != MAGIC:
        raise BinaryFormatError("wrong magic bytes (a .wasm file starts with \\0asm)")
    if data[4:8] == VERSION_COMPONENT:
        raise BinaryFormatError("this is a Wasm component, fless runs core modules")
    if data[4:8] != VERSION_MODULE:
        raise BinaryFormatError(f"unsupported binary version {data[4:8].hex()}")
    imports: list[Import] = []
    exports: list[Export] = []
    for section, body in sections(data, 8):
        if section == _SECTION_IMPORT:
            for _ in range(body.u32()):
                module = body.name()
                name = body.name()
                imports.append(Import(module, name, body.import_desc()))
        elif section == _SECTION_EXPORT:
            for _ in range(body.u32()):
                name = body.name()
                kind = body.byte()
                body.u32()
                exports.append(Export(name, _KIND_NAMES.get(kind, f"kind{kind}")))
    return ModuleShape(tuple(imports), tuple(exports))
