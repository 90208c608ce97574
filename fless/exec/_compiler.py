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

Not imported from the package's ``__init__``: a worker imports it through
``_engine``.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from dataclasses import dataclass

import wasmtime

# What the child's exit status says (besides 0: the compiled code is on stdout).
_EXIT_INVALID = 3  # the code does not compile: the reason is on stderr
_EXIT_OUT_OF_MEMORY = 4  # an allocation failed under the rlimit
_OUT_OF_MEMORY = re.compile(r"mmap failed|memory allocation|out of memory|Cannot allocate")
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


def compile_in_child(code: bytes, component: bool, limits: CompileLimits) -> bytes:
    """Compiles ``code`` in a child process and returns the serialized machine code.

    Args:
        code: a core module or a component.
        component: compile it as a component.
        limits: the child's time and memory.

    Raises:
        CompileFailed: with a message for the user (invalid code, over a limit).
    """
    args = [sys.executable, "-I", __file__, "component" if component else "module",
            str(limits.memory_bytes + CHILD_BASE_BYTES)]
    try:
        done = subprocess.run(
            args, input=code, capture_output=True, timeout=limits.timeout_s, check=False,
            env={"PATH": os.environ.get("PATH", ""), "MALLOC_ARENA_MAX": "2"},
        )
    except subprocess.TimeoutExpired:
        raise CompileFailed(
            f"compiling the code took longer than {limits.timeout_s:g} s, the limit"
            " (worker.compile_timeout_s)", over_limit=True
        ) from None
    if done.returncode == 0:
        return done.stdout
    detail = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode == _EXIT_INVALID:
        raise CompileFailed(detail or "the code does not compile")
    if done.returncode in (_EXIT_OUT_OF_MEMORY, -6, 134) or "memory allocation" in detail:
        # A Rust allocation failure aborts (SIGABRT) with "memory allocation of N bytes failed".
        raise CompileFailed(
            f"compiling the code needed more than {limits.memory_bytes >> 20} MiB,"
            " the limit (worker.compile_memory_mib)", over_limit=True
        )
    last = detail.splitlines()[-1] if detail else f"exit status {done.returncode}"
    raise CompileFailed(f"the compiler failed: {last}")


def _child(kind: str, address_space: int) -> int:
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    code = sys.stdin.buffer.read()
    engine = wasmtime.Engine(engine_config())
    try:
        if kind == "component":
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
    sys.exit(_child(sys.argv[1], int(sys.argv[2])))
