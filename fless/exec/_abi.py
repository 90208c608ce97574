"""The two function ABIs: detecting them, and the pure parts of their marshalling.

FunLess ABI: the module exports ``__invoke`` and imports host functions from
``fl_imps``. WASI command ABI: the module exports ``_start``; JSON args on
stdin, JSON result on stdout. Both may import WASI preview 1.
"""

from __future__ import annotations

import enum
import struct
from urllib.parse import urlsplit

from ._binary import BinaryFormatError, ModuleShape, check_component, is_component, read_shape
from ._errors import InvalidModule


class Abi(enum.StrEnum):
    """How the host passes arguments in and reads the result out."""

    FUNLESS = "funless"
    WASI = "wasi"
    # A component of the fless world (see _component.py): handle(json) -> result.
    COMPONENT = "component"


FUNLESS_MODULE = "fl_imps"
FUNLESS_IMPORTS: dict[str, int] = {
    # name -> number of i32 parameters; none returns a value
    "__get_input_data": 1,
    "__insert_response": 2,
    "__insert_error": 2,
    "__console_log": 2,
    "__http_request": 10,
}
WASI_MODULE = "wasi_snapshot_preview1"
# Every function of WASI preview 1 (the witx of the snapshot); Wasmtime
# provides all of them, fless configures them with no files and no environment.
WASI_FUNCTIONS = frozenset(
    [
        "args_get",
        "args_sizes_get",
        "environ_get",
        "environ_sizes_get",
        "clock_res_get",
        "clock_time_get",
        "fd_advise",
        "fd_allocate",
        "fd_close",
        "fd_datasync",
        "fd_fdstat_get",
        "fd_fdstat_set_flags",
        "fd_fdstat_set_rights",
        "fd_filestat_get",
        "fd_filestat_set_size",
        "fd_filestat_set_times",
        "fd_pread",
        "fd_prestat_get",
        "fd_prestat_dir_name",
        "fd_pwrite",
        "fd_read",
        "fd_readdir",
        "fd_renumber",
        "fd_seek",
        "fd_sync",
        "fd_tell",
        "fd_write",
        "path_create_directory",
        "path_filestat_get",
        "path_filestat_set_times",
        "path_link",
        "path_open",
        "path_readlink",
        "path_remove_directory",
        "path_rename",
        "path_symlink",
        "path_unlink_file",
        "poll_oneoff",
        "proc_exit",
        "proc_raise",
        "sched_yield",
        "random_get",
        "sock_accept",
        "sock_recv",
        "sock_send",
        "sock_shutdown",
    ]
)

HTTP_METHODS = {0: "GET", 1: "POST", 2: "PUT", 3: "DELETE"}


def detect_abi(shape: ModuleShape) -> Abi:
    """Finds the ABI of a module from its exports, and checks its imports.

    Raises:
        InvalidModule: naming the missing export or the first unknown import.
    """
    for imp in shape.imports:
        if imp.kind != "func":
            raise InvalidModule(
                f"module imports a {imp.kind} {imp.module}.{imp.name};"
                " fless provides only functions"
            )
        known = (imp.module == FUNLESS_MODULE and imp.name in FUNLESS_IMPORTS) or (
            imp.module == WASI_MODULE and imp.name in WASI_FUNCTIONS
        )
        if not known:
            raise InvalidModule(
                f"module imports {imp.module}.{imp.name}, which fless does not provide"
            )
    if shape.exports_func("__invoke"):
        if not any(e.name == "memory" and e.kind == "memory" for e in shape.exports):
            raise InvalidModule("a FunLess-ABI module must export its memory as 'memory'")
        return Abi.FUNLESS
    if shape.exports_func("_start"):
        return Abi.WASI
    raise InvalidModule("module exports neither __invoke (FunLess ABI) nor _start (WASI command)")


def inspect_code(code: bytes) -> Abi:
    """Reads a module's shape and detects its ABI, without compiling it.

    Raises:
        InvalidModule: "not a WebAssembly module: ..." or an ABI problem.
    """
    if is_component(code):
        # Its imports and exports are checked when a worker links it (_component.py).
        try:
            check_component(code)
        except BinaryFormatError as exc:
            raise InvalidModule(f"not a WebAssembly component: {exc}") from exc
        return Abi.COMPONENT
    try:
        shape = read_shape(code)
    except BinaryFormatError as exc:
        raise InvalidModule(f"not a WebAssembly module: {exc}") from exc
    return detect_abi(shape)


def parse_headers(raw: str) -> list[tuple[str, str]]:
    """Headers as the FunLess ABI passes them: ``Key:Value`` lines joined by newlines."""
    headers: list[tuple[str, str]] = []
    for line in raw.split("\n"):
        line = line.strip("\r")
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise ValueError(f"malformed header line {line!r}")
        headers.append((key.strip(), value.strip()))
    return headers


def host_allowed(url: str, allow: frozenset[str]) -> bool:
    """Whether outbound HTTP may reach ``url``.

    An allow-list entry is a host name (``api.example.org``), a host and port
    (``10.0.0.5:8080``), or a wildcard for subdomains (``*.example.org``).
    Only http and https URLs are ever allowed.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = parts.hostname.lower()
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    for entry in allow:
        entry = entry.lower()
        if entry == host or entry == f"{host}:{port}":
            return True
        if entry.startswith("*.") and host.endswith(entry[1:]):
            return True
    return False


def u16_le(value: int) -> bytes:
    """A status code as the ABI writes it at ``status_ptr``."""
    return struct.pack("<H", value & 0xFFFF)


def u32_le(value: int) -> bytes:
    """A length as the ABI writes it at ``resp_len_ptr``."""
    return struct.pack("<I", value & 0xFFFFFFFF)
