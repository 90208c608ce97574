"""The section bounds an upload meets before Wasmtime sees it (``_bounds``): a pure reader."""

from __future__ import annotations

import dataclasses
import time

import pytest
from fixtures import bombs
from fixtures.build import c, wat

from fless.config import FunctionSettings
from fless.core._platform import code_bounds
from fless.exec import Abi, CodeBounds, CompileLimits, InvalidModule, validate_code
from fless.exec._binary import BinaryFormatError
from fless.exec._bounds import BoundExceeded, ModuleCounts, check_bounds, count_module
from fless.exec._validate import IN_PROCESS_BYTES

COMPONENT_HEADER = b"\x00asm\x0d\x00\x01\x00"


def component_of(*modules: bytes) -> bytes:
    """A component binary embedding ``modules`` as core module sections (only the outline)."""
    return COMPONENT_HEADER + b"".join(b"\x01" + bombs.leb(len(m)) + m for m in modules)


def counts(code: bytes) -> ModuleCounts:
    return count_module(code)


def test_counts_functions_and_bodies() -> None:
    found = counts(bombs.functions(300, b"\x01\x01"))  # two nops each
    assert found.functions == 300
    assert found.types == 1
    assert found.exports == 2
    assert found.memories == 1
    assert found.function_bytes == 4  # locals vector, two nops, end


def test_counts_imports_tables_globals_and_segments() -> None:
    code = bombs.wat_command("""
      (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
      (memory (export "memory") 1)
      (table 7 funcref) (table 3 externref)
      (global (mut i32) (i32.const 0)) (global i64 (i64.const 1))
      (elem (i32.const 0) func 1) (elem (i32.const 1) func 1 1)
      (data (i32.const 0) "a") (data (i32.const 8) "b") (data (i32.const 16) "c")
      (func (export "_start") (local i32 i32 i64) (local f32))""")
    found = counts(code)
    assert found.imports == 1
    assert found.functions == 2  # the import and _start
    assert found.tables == 2
    assert found.table_elements == 7
    assert found.globals == 2
    assert found.element_segments == 2
    assert found.data_segments == 3
    assert found.locals == 4


def test_memory64_and_its_size_are_read() -> None:
    found = counts(bombs.memory64(2))
    assert found.memories == 1


@pytest.mark.parametrize("name", ["fl_hello", "wasi_hello", "fl_membomb", "fl_reactor"])
def test_fixtures_meet_the_defaults(name: str) -> None:
    assert len(check_bounds(wat(name), CodeBounds())) == 1


def test_c_fixtures_meet_the_defaults() -> None:
    check_bounds(c("hello_wasi"), CodeBounds())
    check_bounds(c("http_get"), CodeBounds())


# Each bound, a module just past it, and the words of the refusal.
PAST: list[tuple[str, int, bytes, str]] = [
    ("functions", 100, bombs.functions(101), "101 functions; fless accepts at most 100"),
    (
        "function_bytes",
        50,
        bombs.functions(1, b"\x01" * 60),
        "62 bytes in one function body; fless accepts at most 50",
    ),
    (
        "locals",
        10,
        bombs.wat_command(
            '(memory (export "memory") 1) (func (export "_start") (local i32 i32 i32 i32 i32 i32)'
            " (local i64 i64 i64 i64 i64))"
        ),
        "11 locals in one function; fless accepts at most 10",
    ),
    (
        "total_locals",
        25,
        bombs.many_locals(3, 10),
        "30 locals in all its functions; fless accepts at most 25",
    ),
    (
        "types",
        2,
        bombs.wat_command(
            '(memory (export "memory") 1) (type (func)) (type (func (param i32)))'
            ' (type (func (param i64))) (func (export "_start"))'
        ),
        "3 types",
    ),
    (
        "imports",
        1,
        bombs.wat_command(
            '(import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))'
            ' (import "wasi_snapshot_preview1" "sched_yield" (func (result i32)))'
            ' (memory (export "memory") 1) (func (export "_start"))'
        ),
        "2 imports",
    ),
    (
        "exports",
        2,
        bombs.wat_command(
            '(memory (export "memory") 1) (func (export "_start")) (func (export "x"))'
        ),
        "3 exports",
    ),
    (
        "globals",
        1,
        bombs.wat_command(
            '(memory (export "memory") 1) (global i32 (i32.const 1)) (global i32 (i32.const 2))'
            ' (func (export "_start"))'
        ),
        "2 globals",
    ),
    ("tables", 4, bombs.many_tables(5), "5 tables; fless accepts at most 4"),
    (
        "table_elements",
        100_000,
        bombs.big_table(100_001),
        "100001 elements in one table's initial size; fless accepts at most 100000",
    ),
    ("memories", 1, bombs.many_memories(2), "2 linear memories; fless accepts at most 1"),
    (
        "element_segments",
        1,
        bombs.wat_command(
            '(memory (export "memory") 1) (table 2 funcref) (elem (i32.const 0) func 0)'
            ' (elem (i32.const 1) func 0) (func (export "_start"))'
        ),
        "2 element segments",
    ),
    (
        "data_segments",
        1,
        bombs.wat_command(
            '(memory (export "memory") 1) (data (i32.const 0) "a") (data (i32.const 1) "b")'
            ' (func (export "_start"))'
        ),
        "2 data segments",
    ),
]


@pytest.mark.parametrize(("bound", "most", "code", "words"), PAST, ids=[p[0] for p in PAST])
def test_each_bound_refuses_one_past_it(bound: str, most: int, code: bytes, words: str) -> None:
    bounds = dataclasses.replace(CodeBounds(), **{bound: most})
    with pytest.raises(BoundExceeded, match=words):
        check_bounds(code, bounds)
    # At the bound itself the same module passes: the bound is what refused it.
    at = getattr(counts(code), bound)
    check_bounds(code, dataclasses.replace(CodeBounds(), **{bound: at}))


def test_a_quarter_million_functions_are_refused_by_the_defaults() -> None:
    code = bombs.functions(250_000)
    with pytest.raises(InvalidModule, match="250000 functions; fless accepts at most 50000"):
        validate_code(code)


def test_locals_are_bounded_in_all_functions_together() -> None:
    # 15,000 functions of 50,000 locals each: a 140 KB upload, each function
    # within the bound of one, that compiled for longer than two minutes.
    code = bombs.many_locals(15_000, 50_000)
    assert len(code) < 200_000
    with pytest.raises(InvalidModule, match="locals in all its functions; fless accepts at most"):
        validate_code(code)
    # CPython's core module, the most of any real one, has 41,709 in all.
    validate_code(bombs.many_locals(4, 45_000))


def test_runs_of_no_locals_count_and_are_not_read_past_the_bound() -> None:
    # A 2 MB body of a million runs that each declare no local: valid for
    # Wasmtime, and 2.4 s of this reader's Python loop (on the API's event
    # loop) before it counted each run as a local and stopped at the bound.
    code = bombs.local_runs(1, 1_000_000, 0)
    with pytest.raises(BoundExceeded, match="50001 locals in one function"):
        check_bounds(code, CodeBounds())
    found = counts(bombs.local_runs(2, 5, 0))
    assert (found.locals, found.total_locals) == (5, 10)


def test_a_large_module_is_validated_in_a_child_within_its_time() -> None:
    # 1 MB that Wasmtime's validator takes about 25 s over (each br_table
    # target checks a thousand results); in this process nothing stopped it.
    code = bombs.slow_br_table(1000, 1_000_000)
    assert len(code) > IN_PROCESS_BYTES
    start = time.monotonic()
    with pytest.raises(
        InvalidModule,
        match=r"validating the code took longer than 1 s, the limit"
        r" \(functions.validate_timeout_s\)",
    ):
        validate_code(code, limits=CompileLimits(timeout_s=1))
    assert time.monotonic() - start < 10


def test_a_large_module_validated_in_a_child_is_refused_or_taken_as_in_process() -> None:
    valid = bombs.functions(30_000)
    assert len(valid) > IN_PROCESS_BYTES
    assert validate_code(valid) is Abi.WASI
    invalid = bombs.slow_to_validate(1)
    with pytest.raises(InvalidModule, match="not a valid WebAssembly module: type mismatch"):
        validate_code(invalid)


def test_validate_code_takes_its_bounds() -> None:
    code = bombs.functions(10)
    validate_code(code)
    with pytest.raises(InvalidModule, match="10 functions; fless accepts at most 9"):
        validate_code(code, CodeBounds(functions=9))


def test_every_core_module_of_a_component_is_checked() -> None:
    small, big = bombs.functions(5), bombs.functions(20)
    assert [m.functions for m in check_bounds(component_of(small, big), CodeBounds())] == [5, 20]
    with pytest.raises(BoundExceeded, match="core module 2 of the component declares 20 functions"):
        check_bounds(component_of(small, big), CodeBounds(functions=10))


def test_nested_components_are_checked_and_bounded_in_depth() -> None:
    inner = component_of(bombs.functions(20))
    nested = COMPONENT_HEADER + b"\x04" + bombs.leb(len(inner)) + inner
    with pytest.raises(BoundExceeded, match="20 functions"):
        check_bounds(nested, CodeBounds(functions=10))
    deep = bombs.functions(1)
    for _ in range(10):
        deep = COMPONENT_HEADER + b"\x04" + bombs.leb(len(deep)) + deep
    with pytest.raises(BoundExceeded, match="nested more than 8 deep"):
        check_bounds(deep, CodeBounds())


@pytest.mark.parametrize(
    "code",
    [
        b"\x00asm\x01\x00\x00\x00\x03\x05\x01",  # a section longer than the bytes
        b"\x00asm\x01\x00\x00\x00\x03\x01\xff",  # a count cut short
        b"\x00asm\x01\x00\x00\x00\x0a\x03\x01\x09\x00",  # a body longer than its section
        b"not wasm at all",
    ],
)
def test_truncated_or_foreign_bytes_are_format_errors(code: bytes) -> None:
    with pytest.raises(BinaryFormatError):
        check_bounds(code, CodeBounds())


def test_truncated_bytes_are_a_clear_400_from_validate_code() -> None:
    with pytest.raises(InvalidModule, match="not a WebAssembly module"):
        validate_code(bombs.functions(3)[:-2])


def test_the_defaults_are_the_settings_defaults() -> None:
    # A core builds its bounds from [functions] max_module_*; CodeBounds()
    # (what validate_code uses alone) must not be stricter or looser.
    assert code_bounds(FunctionSettings()) == CodeBounds()
    names = {f.name for f in dataclasses.fields(FunctionSettings)}
    assert {f"max_module_{f.name}" for f in dataclasses.fields(CodeBounds)} - names == {
        "max_module_memories"  # one memory: not a setting, more cannot be capped
    }
