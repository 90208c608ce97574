"""What an uploaded module may declare: counts read from its sections before anything compiles.

Wasmtime's own validator accepts up to a million functions, and its cost
grows with them: a 1 MB module of 250,000 empty functions took 1.4 GB to
compile. This reader walks the section headers and the few vectors whose
size drives the cost (types, imports, functions, tables, memories, globals,
exports, element and data segments, function bodies and their locals), in
one pass over the bytes, and refuses a module past any bound with a message
that names it. A component is checked module by module: each core module it
embeds (and each nested component) meets the same bounds.

It is a reader of counts, not a validator: Wasmtime's validator runs after
it on what it lets through.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._binary import (
    MAGIC,
    VERSION_COMPONENT,
    VERSION_MODULE,
    BinaryFormatError,
    _Reader,
    sections,
)

# Core module sections, by id.
_TYPE, _IMPORT, _FUNCTION, _TABLE, _MEMORY, _GLOBAL, _EXPORT = 1, 2, 3, 4, 5, 6, 7
_ELEMENT, _CODE, _DATA = 9, 10, 11
# Component sections that hold a core module or a component.
_COMPONENT_CORE_MODULE, _COMPONENT_COMPONENT = 1, 4
# Reference types whose heap type follows as a signed LEB (typed function references).
_REF_NULLABLE, _REF = 0x63, 0x64
# How deep components may nest (a nested component is checked like its parent).
_MAX_NESTING = 8


class BoundExceeded(ValueError):
    """A module declares more than fless accepts; the message names what and the bound."""


@dataclass(frozen=True)
class CodeBounds:
    """The most an uploaded module may declare, per core module.

    The defaults hold every language fless has an SDK for, with room: the
    largest real module measured (CPython's, inside a componentize-py
    component) has 10,878 functions and a 427 KB function body; Go's has
    41,583 data segments and a table of 6,552 elements (docs/SECURITY.md
    has the figures of every example).

    Attributes:
        functions: functions defined and imported.
        function_bytes: the largest function body, in bytes.
        locals: local variables of one function.
        total_locals: local variables of all its functions together. The
            compiler's cost grows with every local of every function, used
            or not: 15,000 functions of 50,000 locals each are a 120 KB
            upload that took longer than the two-minute compile limit on
            both cores; the most any real module has is 41,709 (CPython's).
        types: function types.
        imports: imports.
        exports: exports.
        globals: globals defined.
        tables: tables defined and imported.
        table_elements: the initial size of any one table.
        memories: linear memories defined and imported (more than one
            cannot be capped as one: Wasmtime limits each memory alone).
        element_segments: element segments.
        data_segments: data segments.
    """

    functions: int = 50_000
    function_bytes: int = 2 * 1024 * 1024
    locals: int = 50_000
    total_locals: int = 200_000
    types: int = 20_000
    imports: int = 5_000
    exports: int = 20_000
    globals: int = 10_000
    tables: int = 4
    table_elements: int = 100_000
    memories: int = 1
    element_segments: int = 10_000
    data_segments: int = 100_000


@dataclass(frozen=True)
class ModuleCounts:
    """What one core module declares (the figures ``CodeBounds`` bounds)."""

    functions: int = 0
    function_bytes: int = 0
    locals: int = 0
    total_locals: int = 0
    types: int = 0
    imports: int = 0
    exports: int = 0
    globals: int = 0
    tables: int = 0
    table_elements: int = 0
    memories: int = 0
    element_segments: int = 0
    data_segments: int = 0


_WHAT = {
    "functions": "functions",
    "function_bytes": "bytes in one function body",
    "locals": "locals in one function",
    "total_locals": "locals in all its functions",
    "types": "types",
    "imports": "imports",
    "exports": "exports",
    "globals": "globals",
    "tables": "tables",
    "table_elements": "elements in one table's initial size",
    "memories": "linear memories",
    "element_segments": "element segments",
    "data_segments": "data segments",
}


def count_module(
    data: bytes,
    start: int = 8,
    end: int | None = None,
    bounds: CodeBounds | None = None,
    where: str = "module",
) -> ModuleCounts:
    """Reads the counts of the core module whose sections lie in ``data[start:end]``.

    Args:
        data: the bytes holding the module.
        start: where its first section begins (after the header).
        end: where it ends (the end of ``data`` when None).
        bounds: if given, checked after each section, so that a module of a
            million functions is refused before its code section is read.
        where: how a refusal names the module.

    Raises:
        BinaryFormatError: truncated sections or malformed vectors.
        BoundExceeded: past ``bounds``.
    """
    found: dict[str, int] = dict.fromkeys(_WHAT, 0)
    for section, body in sections(data, start, end):
        if section == _TYPE:
            found["types"] = body.u32()
        elif section == _IMPORT:
            _read_imports(body, found)
        elif section == _FUNCTION:
            found["functions"] += body.u32()
        elif section == _TABLE:
            for _ in range(body.u32()):
                found["tables"] += 1
                found["table_elements"] = max(found["table_elements"], _table_initial(body))
        elif section == _MEMORY:
            found["memories"] += body.u32()
        elif section == _GLOBAL:
            found["globals"] = body.u32()
        elif section == _EXPORT:
            found["exports"] = body.u32()
        elif section == _ELEMENT:
            found["element_segments"] = body.u32()
        elif section == _DATA:
            found["data_segments"] = body.u32()
        elif section == _CODE:
            _read_code(body, found, bounds, where)
        if bounds is not None:
            check_counts(ModuleCounts(**found), bounds, where)
    return ModuleCounts(**found)


def _read_imports(body: _Reader, found: dict[str, int]) -> None:
    count = body.u32()
    found["imports"] = count
    for _ in range(count):
        body.name()
        body.name()
        kind = body.byte()
        if kind == 0:
            found["functions"] += 1
            body.u32()
        elif kind == 1:
            found["tables"] += 1
            _ref_type(body)
            found["table_elements"] = max(found["table_elements"], _limits_initial(body))
        elif kind == 2:
            found["memories"] += 1
            _limits_initial(body)
        elif kind == 3:
            _value_type(body)
            body.byte()
        elif kind == 4:
            body.byte()
            body.u32()
        else:
            raise BinaryFormatError(f"unknown import kind {kind}")


def _read_code(body: _Reader, found: dict[str, int], bounds: CodeBounds | None, where: str) -> None:
    # The locals are read in runs (a count and a type), one Python step each:
    # runs of no local cost two bytes, and a 2 MB body of them took this
    # loop 2.4 s. Each run counts as one local at least, and a function past
    # a locals bound is refused at once, so the steps stay within the bounds.
    most = bounds.locals if bounds is not None else None
    most_total = bounds.total_locals if bounds is not None else None
    for _ in range(body.u32()):
        size = body.u32()
        fn_start = body.pos
        body.skip(size)
        found["function_bytes"] = max(found["function_bytes"], size)
        fn = _Reader(body.data, fn_start, fn_start + size)
        declared = 0
        for _ in range(fn.u32()):
            declared += fn.u32() or 1
            _value_type(fn)
            if (
                most is not None
                and most_total is not None
                and (declared > most or found["total_locals"] + declared > most_total)
            ):
                found["locals"] = max(found["locals"], declared)
                found["total_locals"] += declared
                check_counts(ModuleCounts(**found), bounds or CodeBounds(), where)
        found["locals"] = max(found["locals"], declared)
        found["total_locals"] += declared


def _table_initial(body: _Reader) -> int:
    if body.data[body.pos : body.pos + 2] == b"\x40\x00":
        # A table with an initializer expression (typed function references):
        # its type and limits, then the expression, which this reader cannot
        # skip; such a module is refused as unreadable past the first.
        body.skip(2)
        _ref_type(body)
        initial = _limits_initial(body)
        raise BoundExceeded(
            f"tables with initializer expressions are not supported (one of {initial} elements)"
        )
    _ref_type(body)
    return _limits_initial(body)


def _limits_initial(body: _Reader) -> int:
    flags = body.byte()
    if flags & ~0x0F:
        raise BinaryFormatError(f"unknown limits flags {flags:#x}")
    wide = bool(flags & 0x04)
    initial = _u64(body) if wide else body.u32()
    if flags & 0x01:
        _u64(body) if wide else body.u32()
    if flags & 0x08:
        body.u32()  # custom page size (log2)
    return initial


def _u64(body: _Reader) -> int:
    result = 0
    for shift in range(0, 70, 7):
        b = body.byte()
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result
    raise BinaryFormatError("integer representation too long")


def _s33(body: _Reader) -> None:
    for _ in range(5):
        if not body.byte() & 0x80:
            return
    raise BinaryFormatError("integer representation too long")


def _ref_type(body: _Reader) -> None:
    if body.byte() in (_REF_NULLABLE, _REF):
        _s33(body)


def _value_type(body: _Reader) -> None:
    _ref_type(body)


def check_counts(counts: ModuleCounts, bounds: CodeBounds, where: str = "module") -> None:
    """Refuses ``counts`` past any of ``bounds``.

    Raises:
        BoundExceeded: "module declares 250000 functions; fless accepts at most 50000".
    """
    for name, what in _WHAT.items():
        have, most = getattr(counts, name), getattr(bounds, name)
        if have > most:
            raise BoundExceeded(f"{where} declares {have} {what}; fless accepts at most {most}")


def check_bounds(data: bytes, bounds: CodeBounds) -> list[ModuleCounts]:
    """Checks a module, or every core module inside a component, against ``bounds``.

    Returns:
        The counts of each core module checked, in order.

    Raises:
        BoundExceeded: a module declares too much.
        BinaryFormatError: the bytes are not a module or component this can read.
    """
    if len(data) < 8 or data[:4] != MAGIC:
        raise BinaryFormatError("wrong magic bytes (a .wasm file starts with \\0asm)")
    found: list[ModuleCounts] = []
    _check_at(data, 0, len(data), bounds, found, 0)
    return found


def _check_at(
    data: bytes, start: int, end: int, bounds: CodeBounds, found: list[ModuleCounts], depth: int
) -> None:
    version = data[start + 4 : start + 8]
    if data[start : start + 4] != MAGIC:
        raise BinaryFormatError("an embedded module has wrong magic bytes")
    if version == VERSION_MODULE:
        where = "module" if depth == 0 else f"core module {len(found) + 1} of the component"
        found.append(count_module(data, start + 8, end, bounds, where))
        return
    if version != VERSION_COMPONENT:
        raise BinaryFormatError(f"unsupported binary version {version.hex()}")
    if depth >= _MAX_NESTING:
        raise BoundExceeded(f"components nested more than {_MAX_NESTING} deep")
    for section, body in sections(data, start + 8, end):
        if section in (_COMPONENT_CORE_MODULE, _COMPONENT_COMPONENT):
            if body.end - body.pos < 8:
                raise BinaryFormatError("an embedded module is truncated")
            _check_at(data, body.pos, body.end, bounds, found, depth + 1)
