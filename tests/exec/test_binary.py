"""Reading modules without compiling them: shapes, ABI detection, refusals."""

from __future__ import annotations

import pytest
import wasmtime
from fixtures.build import FIXTURES, c, wat

from fless.exec import Abi, InvalidModule, inspect_code, validate_code
from fless.exec._binary import BinaryFormatError, Export, Import, read_shape

FUNLESS = [
    "fl_hello",
    "fl_error",
    "fl_trap",
    "fl_loop",
    "fl_membomb",
    "fl_recursion",
    "fl_big_response",
    "fl_log_flood",
    "fl_bad_utf8",
    "fl_http_denied",
    "fl_counter",
    "fl_stdout",
    "fl_big_memory",
    "fl_reactor",
    "fl_exit",
    "fl_spin",
    "fl_loop_if_long",
    "fl_hello_may_sleep",
    "fl_log_empty",
    "fl_log_spin",
    "fl_grow_between_calls",
    "fl_bad_pointer",
]
WASI = [
    "wasi_hello",
    "wasi_exit",
    "wasi_flood",
    "wasi_open",
    "wasi_abort",
    "wasi_sleep",
    "wasi_poll",
    "wasi_random",
    "wasi_stderr_lines",
    "wasi_poll_spin",
    "wasi_write_spin",
]
INVALID = ["no_exports", "unknown_import"]
COMPONENTS = ["component_sleep"]


def test_every_wat_fixture_is_checked_here() -> None:
    on_disk = {p.stem for p in (FIXTURES / "wat").glob("*.wat")}
    assert on_disk == {*FUNLESS, *WASI, *INVALID, *COMPONENTS}


@pytest.mark.parametrize("name", COMPONENTS)
def test_component_fixtures_are_detected(name: str) -> None:
    assert inspect_code(wat(name)) is Abi.COMPONENT


@pytest.mark.parametrize("name", FUNLESS)
def test_funless_fixtures_are_detected(name: str) -> None:
    shape = read_shape(wat(name))
    assert shape.exports_func("__invoke")
    assert Export("memory", "memory") in shape.exports
    assert all(i.module in ("fl_imps", "wasi_snapshot_preview1") for i in shape.imports)
    assert inspect_code(wat(name)) is Abi.FUNLESS


@pytest.mark.parametrize("name", WASI)
def test_wasi_fixtures_are_detected(name: str) -> None:
    shape = read_shape(wat(name))
    assert shape.exports_func("_start")
    assert not shape.exports_func("__invoke")
    assert inspect_code(wat(name)) is Abi.WASI


def test_shape_lists_imports_in_declaration_order() -> None:
    shape = read_shape(wat("fl_hello"))
    assert shape.imports == (
        Import("fl_imps", "__get_input_data", "func"),
        Import("fl_imps", "__insert_response", "func"),
        Import("fl_imps", "__console_log", "func"),
    )
    assert Export("__invoke", "func") in shape.exports


def test_c_fixtures_are_detected() -> None:
    assert inspect_code(c("hello_wasi")) is Abi.WASI
    # A reactor: exports _initialize and __invoke, imports from fl_imps.
    shape = read_shape(c("http_get"))
    assert shape.exports_func("_initialize")
    assert Import("fl_imps", "__http_request", "func") in shape.imports
    assert inspect_code(c("http_get")) is Abi.FUNLESS


@pytest.mark.parametrize(
    "code",
    [
        b"",
        b"garbage, not wasm at all",
        b"\0asm",  # magic and no version
        b"\0asx\x01\0\0\0",
        b"\x7fELF\x02\x01\x01\0",
    ],
    ids=["empty", "garbage", "magic_only", "wrong_magic", "elf"],
)
def test_non_modules_are_refused(code: bytes) -> None:
    with pytest.raises(InvalidModule, match=r"^not a WebAssembly module: "):
        inspect_code(code)


def test_truncated_module_is_refused() -> None:
    code = wat("fl_hello")
    for cut in (9, 20, len(code) - 1):
        with pytest.raises(InvalidModule, match=r"^not a WebAssembly module: unexpected end"):
            inspect_code(code[:cut])


def test_component_and_unknown_versions_are_named() -> None:
    with pytest.raises(InvalidModule, match="component"):
        inspect_code(b"\0asm\x0d\x00\x01\x00")
    with pytest.raises(InvalidModule, match="unsupported binary version 02000000"):
        inspect_code(b"\0asm\x02\x00\x00\x00")


def test_read_shape_raises_its_own_error() -> None:
    with pytest.raises(BinaryFormatError):
        read_shape(b"\0asm\x01\0\0\0\x02\x05\x01")


def test_unknown_import_is_named() -> None:
    with pytest.raises(InvalidModule, match=r"env\.foo"):
        inspect_code(wat("unknown_import"))


def test_no_exports_names_both_entry_points() -> None:
    with pytest.raises(InvalidModule) as info:
        inspect_code(wat("no_exports"))
    assert "__invoke" in str(info.value)
    assert "_start" in str(info.value)


def test_unknown_wasi_function_is_refused() -> None:
    code = wasmtime.wat2wasm(
        '(module (import "wasi_snapshot_preview1" "no_such_call" (func)) (func (export "_start")))'
    )
    with pytest.raises(InvalidModule, match=r"wasi_snapshot_preview1\.no_such_call"):
        inspect_code(bytes(code))


def test_imported_memory_is_refused() -> None:
    code = wasmtime.wat2wasm('(module (import "env" "memory" (memory 1)) (func (export "_start")))')
    with pytest.raises(InvalidModule, match=r"imports a memory env\.memory"):
        inspect_code(bytes(code))


def test_funless_module_must_export_memory() -> None:
    code = wasmtime.wat2wasm(
        '(module (memory 1) (func (export "__invoke") (param i32) (result i32) i32.const 0))'
    )
    with pytest.raises(InvalidModule, match="export its memory as 'memory'"):
        inspect_code(bytes(code))


def test_invoke_wins_over_start() -> None:
    code = wasmtime.wat2wasm(
        '(module (memory (export "memory") 1) (func (export "_start"))'
        ' (func (export "__invoke") (param i32) (result i32) i32.const 0))'
    )
    assert inspect_code(bytes(code)) is Abi.FUNLESS


def test_validate_code_runs_the_validator_too() -> None:
    assert validate_code(wat("fl_hello")) is Abi.FUNLESS
    assert validate_code(c("hello_wasi")) is Abi.WASI
    good = bytes(
        wasmtime.wat2wasm(
            '(module (memory (export "memory") 1)'
            ' (func (export "__invoke") (param i32) (result i32) i32.const 0))'
        )
    )
    bad = good.replace(b"\x41\x00\x0b", b"\x01\x01\x0b")  # i32.const 0 -> nop nop
    assert inspect_code(bad) is Abi.FUNLESS  # the shape is fine
    with pytest.raises(InvalidModule, match=r"^not a valid WebAssembly module: "):
        validate_code(bad)
    with pytest.raises(InvalidModule, match=r"env\.foo"):
        validate_code(wat("unknown_import"))
