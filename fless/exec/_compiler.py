"""Compiling in a short-lived child process, with a cap on its memory and its time.

Cranelift's cost grows with a module's functions and the glibc heap keeps
what it once held: compiling 250,000 empty functions in a node's process
left 1.4 GB resident there after the function was deleted. A child process
that compiles and exits gives all of it back, can be given an address-space
rlimit and a wall-clock timeout, and takes a compiler crash with it. It
sends back ``serialize()`` bytes, which the parent loads with
``deserialize`` (an mmap of machine code, freed when the module goes).

The child runs this file as a script (``python -I _compiler.py``) and
imports nothing but wasmtime, so it starts in about a tenth of a second; the
parent builds its engine from the same ``engine_config``, which is what lets
it load the child's code (Wasmtime checks the settings at deserialize).

Wasmtime is imported by the functions that use it, not by this module: the
core's API process takes ``CompileLimits`` from here, and validates with
Wasmtime only once a module is uploaded (``_validate``).
"""

from __future__ import annotations

import os
import re
import resource
import select
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import wasmtime

# What the child's exit status says (besides 0: the compiled code is on stdout).
_EXIT_INVALID = 3  # the code does not compile: the reason is on stderr
_EXIT_OUT_OF_MEMORY = 4  # an allocation failed under the rlimit
_EXIT_IDLE = 5  # a spare that was never used
# (module (func)): what a spare compiles while it waits.
_WARM_UP = bytes.fromhex("0061736d01000000010401600000030201000a040102000b")
# How long a spare child waits for code before it exits.
SPARE_IDLE_S = 300.0
_OUT_OF_MEMORY = re.compile(r"mmap failed|memory allocation|out of memory|Cannot allocate")
# A core module this small is validated and compiled in the calling process,
# not in a child: starting one (100 to 300 ms) would cost more than the work.
# The worst measured within it (tests/exec/test_small_compiles.py): 16,000
# empty functions, 0.9 s and 87 MiB at the peak, 7 MiB left once the heap is
# trimmed; a br_table of 64,000 targets to a thousand results, 1.6 s to
# validate. Components always go to a child.
IN_PROCESS_BYTES = 64 * 1024
# The child's own footprint (interpreter, wasmtime's library, compiler
# threads' stacks) is not the module's: the rlimit is this much above the cap.
CHILD_BASE_BYTES = 256 << 20

# Proposals whose memory Wasmtime's store limits do not bound, or that fless
# does not offer: a module using them fails validation with Wasmtime's own
# message. GC objects live in a heap of their own; shared memories (threads)
# are created at their maximum; typed function references come with GC.
ENGINE_SETTINGS: tuple[tuple[str, object], ...] = (
    ("epoch_interruption", True),
    ("cranelift_opt_level", "speed"),
    ("wasm_gc", False),
    ("wasm_threads", False),
    ("shared_memory", False),
    ("wasm_stack_switching", False),
)


def engine_config() -> wasmtime.Config:
    """The settings of every engine fless makes: runtime, validator, compiler child."""
    import wasmtime

    config = wasmtime.Config()
    for name, value in ENGINE_SETTINGS:
        setattr(config, name, value)
    return config


def config_words() -> tuple[str, ...]:
    """``ENGINE_SETTINGS`` as words for the engine's fingerprint."""
    return tuple(f"{name}={value}" for name, value in ENGINE_SETTINGS)


@dataclass(frozen=True)
class CompileLimits:
    """What one compile may take.

    Attributes:
        timeout_s: wall time before the child is killed.
        memory_bytes: address space the compile may use beyond the child's own.
    """

    timeout_s: float = 120.0
    memory_bytes: int = 1024 << 20


class CompileFailed(Exception):
    """The code did not compile, or the compile went past its limits; says which.

    Attributes:
        over_limit: the compile was stopped at a limit (the code may be valid).
    """

    def __init__(self, message: str, over_limit: bool = False) -> None:
        super().__init__(message)
        self.over_limit = over_limit


class Compiler:
    """Compiles in child processes, one spare child started ahead of need.

    A child's start (the interpreter, importing wasmtime, an engine) takes
    100 to 300 ms here, more than compiling a small module. So after each
    compile a spare child is started, which readies itself and waits on its
    stdin for the next code; it exits by itself after ``SPARE_IDLE_S``
    unused (or when this process goes, at the end of its stdin). It holds
    about 9 MiB of anonymous memory while it waits. No spare is started
    before the first compile.

    Args:
        limits: the time and memory of each compile.
        spare: start a spare child after each compile.
    """

    def __init__(self, limits: CompileLimits, spare: bool = True) -> None:
        self.limits = limits
        self._spare: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._closed = not spare

    def compile(self, code: bytes, component: bool) -> bytes:
        """Compiles ``code`` in a child and returns the serialized machine code.

        Raises:
            CompileFailed: with a message for the user (invalid code, over a limit).
        """
        child = self._take()
        out, err = _send(
            child,
            b"c" if component else b"m",
            code,
            self.limits.timeout_s,
            "compiling",
            "worker.compile_timeout_s",
        )
        return _result(child.returncode, out, err, self.limits)

    def close(self) -> None:
        """Ends the spare child, if any."""
        with self._lock:
            self._closed = True
            spare, self._spare = self._spare, None
        if spare is not None:
            spare.kill()
            spare.communicate()

    def _take(self) -> subprocess.Popen[bytes]:
        """A ready (or readying) child for this compile, and a spare started for the next."""
        with self._lock:
            child, self._spare = self._spare, None
            if child is None or child.poll() is not None:
                if child is not None:
                    child.communicate()  # reaped: it went idle and exited
                child = _spawn(self.limits)
            if not self._closed:
                self._spare = _spawn(self.limits)
        return child


def _send(
    child: subprocess.Popen[bytes],
    kind: bytes,
    code: bytes,
    timeout_s: float,
    doing: str,
    setting: str,
) -> tuple[bytes, bytes]:
    """Sends ``kind`` and ``code`` to ``child`` apart: no copy of the code is made to join them.

    Args:
        doing: what the child does ("compiling"), for the message past the time limit.
        setting: the setting that holds ``timeout_s``, for the same message.

    Raises:
        CompileFailed: past ``timeout_s`` (``over_limit``); the child is killed.
    """
    assert child.stdin is not None
    try:
        child.stdin.write(kind)
        child.stdin.flush()
    except BrokenPipeError:
        pass  # a spare gone idle: communicate reaps it, its exit status says so
    try:
        return child.communicate(code, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise CompileFailed(
            f"{doing} the code took longer than {timeout_s:g} s, the limit ({setting})",
            over_limit=True,
        ) from None


def _spawn(limits: CompileLimits) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-I",
            __file__,
            str(limits.memory_bytes + CHILD_BASE_BYTES),
            str(SPARE_IDLE_S),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PATH": os.environ.get("PATH", ""), "MALLOC_ARENA_MAX": "2"},
    )


def _result(returncode: int, out: bytes, err: bytes, limits: CompileLimits) -> bytes:
    """The child's machine code, or the error its exit status and stderr tell."""
    if returncode == 0:
        return out
    detail = err.decode("utf-8", "replace").strip()
    if returncode == _EXIT_INVALID:
        raise CompileFailed(detail or "the code does not compile")
    if returncode in (_EXIT_OUT_OF_MEMORY, -6, 134) or "memory allocation" in detail:
        # A Rust allocation failure aborts (SIGABRT) with "memory allocation of N bytes failed".
        raise CompileFailed(
            f"compiling the code needed more than {limits.memory_bytes >> 20} MiB,"
            " the limit (worker.compile_memory_mib)",
            over_limit=True,
        )
    last = detail.splitlines()[-1] if detail else f"exit status {returncode}"
    raise CompileFailed(f"the compiler failed: {last}")


def compile_in_child(code: bytes, component: bool, limits: CompileLimits) -> bytes:
    """Compiles ``code`` in a child process of its own (no spare) and returns the machine code.

    Raises:
        CompileFailed: with a message for the user (invalid code, over a limit).
    """
    return Compiler(limits, spare=False).compile(code, component)


def validate_in_child(code: bytes, limits: CompileLimits) -> None:
    """Runs Wasmtime's validator on ``code`` in a child process, within ``limits``.

    The validator's time is not bounded by a module's size: a block whose
    type has a thousand results, and a ``br_table`` of 100,000 targets to
    it, is 100 KB that took 2.5 s to validate (each target checks every
    result), and 50 MB of it would take many minutes. In a child it is
    stopped at the time limit.

    Raises:
        CompileFailed: the code is invalid (Wasmtime's message), or the
            validation went past a limit (``over_limit``).
    """
    child = _spawn(limits)
    _, err = _send(
        child, b"v", code, limits.timeout_s, "validating", "functions.validate_timeout_s"
    )
    if child.returncode == 0:
        return
    detail = err.decode("utf-8", "replace").strip()
    if child.returncode == _EXIT_INVALID:
        raise CompileFailed(detail or "invalid")
    if child.returncode in (_EXIT_OUT_OF_MEMORY, -6, 134) or "memory allocation" in detail:
        raise CompileFailed(
            f"validating the code needed more than {limits.memory_bytes >> 20} MiB,"
            " the limit (functions.validate_memory_mib)",
            over_limit=True,
        )
    last = detail.splitlines()[-1] if detail else f"exit status {child.returncode}"
    raise CompileFailed(f"the validator failed: {last}")


def _validate(engine: wasmtime.Engine, code: bytes) -> None:
    """``Module.validate`` without its copy of the code (50 MB less at the peak of 50 MB)."""
    import ctypes

    import wasmtime
    from wasmtime import _ffi

    data = ctypes.cast(ctypes.c_char_p(code), ctypes.POINTER(ctypes.c_uint8))
    error = _ffi.wasmtime_module_validate(engine.ptr(), data, len(code))
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)


def _child(address_space: int, idle_s: float) -> int:
    import wasmtime

    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    engine = wasmtime.Engine(engine_config())
    # One function compiled ahead: the compiler's own first-use setup is not
    # the caller's wait.
    wasmtime.Module(engine, _WARM_UP)
    # Ready: wait for the code, but not for ever.
    ready, _, _ = select.select([sys.stdin], [], [], idle_s)
    if not ready:
        return _EXIT_IDLE
    kind = sys.stdin.buffer.read(1)
    code = sys.stdin.buffer.read()
    if kind not in (b"m", b"c", b"v"):
        return _EXIT_IDLE  # the parent went away (end of stdin) or sent nothing
    try:
        if kind == b"v":
            _validate(engine, code)
            return 0
        if kind == b"c":
            from wasmtime import component

            compiled = component.Component(engine, code).serialize()
        else:
            compiled = wasmtime.Module(engine, code).serialize()
    except wasmtime.WasmtimeError as exc:
        text = str(exc).strip()
        sys.stderr.write(text or type(exc).__name__)
        # Under the rlimit Wasmtime may report a failed allocation as an error.
        return _EXIT_OUT_OF_MEMORY if _OUT_OF_MEMORY.search(text) else _EXIT_INVALID
    except MemoryError:
        return _EXIT_OUT_OF_MEMORY
    sys.stdout.buffer.write(compiled)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    status = _child(int(sys.argv[1]), float(sys.argv[2]))
    sys.stdout.flush()
    sys.stderr.flush()
    # No interpreter teardown (tens of ms with wasmtime loaded): the parent
    # waits for this exit.
    os._exit(status)
