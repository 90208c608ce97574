"""The FunLess ABI's host functions (module ``fl_imps``).

Each is called by the guest with i32 arguments. Guest pointers are checked
against the instance's memory before any read or write; a bad pointer traps
the function, never the host.

WASI's ``fd_write`` is here too: the runtime shadows Wasmtime's own with it,
because Wasmtime hands custom stdout and stderr to a background thread (the
bytes may arrive after the call returns, and a function flooding stdout could
not be stopped) while this one keeps the output in step with the guest and
traps the moment the output limit is passed.

So are WASI's ``poll_oneoff`` and ``random_get``, and for the same reason as
``__http_request``'s deadline: epoch interruption stops Wasm code, not a host
call, so every host call that can take long is bounded by the invocation's
deadline here. ``poll_oneoff`` (a sleep) never sleeps past it: at the deadline
the call ends as a ``FunctionTimeout``. ``random_get`` fills the buffer a
mebibyte at a time and stops at the deadline (Wasmtime's makes up to 64 MiB
in one go, in host memory, for about half a second). An outbound request,
name lookup and connect included, ends at the deadline too.
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import wasmtime
from wasmtime import _ffi as ffi

from fless._openssl import allow_ssl

from ._abi import HTTP_METHODS, host_allowed, parse_headers, u16_le, u32_le
from ._errors import ExecError, FunctionTimeout, FunctionTrap, OutputLimitExceeded
from ._limits import Limits
from ._wasi_poll import (
    ALIGN,
    ERRNO_NOMEM,
    EVENT_SIZE,
    MAX_SUBSCRIPTIONS,
    SUBSCRIPTION_SIZE,
    Clocks,
    PollError,
    read_subscriptions,
    ready_events,
    wake_at,
)

WASI_ERRNO_BADF = 8
WASI_ERRNO_INVAL = 28
WASI_IOV_MAX = 1024
# random_get fills at most this much between two looks at the deadline.
RANDOM_CHUNK = 1024 * 1024


@dataclass
class Invocation:
    """The state of one running invocation, seen by the host functions."""

    args: bytes
    limits: Limits
    deadline: float
    response: bytes | None = None
    error: bytes | None = None
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    logs: list[str] = field(default_factory=list)
    log_bytes: int = 0
    logs_truncated: bool = False
    # Host monotonic time (ns) at which the guest's monotonic clock read 0:
    # set by the runtime once the store's WASI context is made.
    clock_origin_ns: int = field(default_factory=time.monotonic_ns)
    output_overflow: bool = False
    host_error: ExecError | None = None
    # WASI command ABI: stdout is the result. FunLess ABI: stdout is more logs.
    stdout_is_output: bool = False
    # The guest's memory export (store context, memory), once a host call looked it up.
    memory: tuple[Any, Any] | None = field(default=None, repr=False)

    def add_log(self, text: str) -> None:
        """Keeps a log line while the log budget (bytes and lines) lasts."""
        if len(self.logs) >= self.limits.max_log_lines:
            # Empty lines cost no bytes but a list entry each, and more on
            # the wire and in the log store.
            self.logs_truncated = True
            return
        size = len(text.encode("utf-8", "replace"))
        if self.log_bytes + size > self.limits.max_log_bytes:
            self.logs_truncated = True
            return
        self.log_bytes += size
        self.logs.append(text)

    def write_stream(self, fd: int, data: bytes, size: int) -> None:
        """Takes what the guest wrote to stdout (1) or stderr (2).

        Args:
            fd: 1 or 2.
            data: the bytes written, or their first part if ``size`` is more
                than could be kept anyway.
            size: how many bytes the guest wrote.

        Raises:
            wasmtime.Trap: stdout is the output and passed its limit.
        """
        if fd == 1 and self.stdout_is_output:
            if len(self.stdout) + size > self.limits.max_output_bytes:
                self.output_overflow = True
                raise inv_fail(
                    self,
                    OutputLimitExceeded(
                        "function output exceeds the output limit of"
                        f" {self.limits.max_output_bytes} bytes"
                    ),
                )
            self.stdout += data
            return
        if fd == 2:
            room = self.limits.max_log_bytes - len(self.stderr)
            self.stderr += data[: max(room, 0)]
        if size > len(data):
            self.logs_truncated = True
        else:
            self.add_log(data.decode("utf-8", "replace"))

    def stream_room(self, fd: int) -> int:
        """How many bytes of one write to ``fd`` could be kept at most."""
        if fd == 1 and self.stdout_is_output:
            return self.limits.max_output_bytes - len(self.stdout) + 1
        return self.limits.max_log_bytes + 1


class _Current(threading.local):
    inv: Invocation | None = None


# The export every FunLess and WASI module's memory goes by.
_MEMORY = b"memory"
_EXTERN_MEMORY = ffi.WASMTIME_EXTERN_MEMORY.value  # a c_ubyte in the bindings; kind reads as int


@dataclass(frozen=True, slots=True)
class _Guest:
    """The caller's memory as one host call sees it: where it is, how large.

    It stays put for the whole host call: only guest code grows a memory,
    and none runs until the call returns. Reads and writes go through
    ``ctypes`` directly; wasmtime-py's ``Memory.read`` and ``write`` look the
    memory's address and size up again on every access and build a ctypes
    array over it, which made a host call of the FunLess ABI cost 30 to 40 us.
    """

    address: int
    size: int

    def span(self, ptr: int, length: int) -> tuple[int, int]:
        """Checks that ``[ptr, ptr+length)`` lies in guest memory; i32s come signed."""
        ptr &= 0xFFFFFFFF
        length &= 0xFFFFFFFF
        if ptr + length > self.size:
            raise wasmtime.Trap(
                f"host call given memory range {ptr}+{length} outside the module's memory"
            )
        return ptr, length

    def read(self, ptr: int, length: int) -> bytes:
        start, size = self.span(ptr, length)
        return ctypes.string_at(self.address + start, size) if size else b""

    def write(self, ptr: int, data: bytes) -> None:
        """Copies ``data`` in at ``ptr``; nothing to copy is no access at all."""
        if data:
            start, size = self.span(ptr, len(data))
            ctypes.memmove(self.address + start, data, size)


def _memory(caller: wasmtime.Caller, inv: Invocation) -> _Guest:
    """The calling instance's exported ``memory``; a trap if it has none.

    The export is looked up once per invocation: a module's store holds one
    instance (``Limits.instances``), so every host call of the invocation
    comes from it. Its address and size are read on each call, since the
    guest may have grown it in between.
    """
    if inv.memory is None:
        item = ffi.wasmtime_extern_t()
        # wasmtime-py keeps the raw caller private; Caller.get would wrap a
        # Memory object around the same lookup.
        raw = caller._Caller__ptr
        if (
            raw is None
            or not ffi.wasmtime_caller_export_get(raw, _MEMORY, len(_MEMORY), ctypes.byref(item))
            or item.kind != _EXTERN_MEMORY
        ):
            raise wasmtime.Trap("module does not export its memory as 'memory'")
        inv.memory = (caller._context(), ctypes.byref(item.of.memory))
    context, memory = inv.memory
    try:
        address = ctypes.addressof(ffi.wasmtime_memory_data(context, memory).contents)
    except ValueError:  # a NULL pointer: an empty memory
        address = 0
    return _Guest(address, ffi.wasmtime_memory_data_size(context, memory))


class HostCalls:
    """The ``fl_imps`` functions and WASI's ``fd_write``, bound once to the linker.

    They find the running invocation in ``current``, a thread-local set by the
    runtime around each call.
    """

    def __init__(self) -> None:
        self.current = _Current()

    def guarded(self, call: Callable[..., Any]) -> Callable[..., Any]:
        """``call``, recording any failure as the running invocation's.

        wasmtime-py hands an exception raised by a host function back to the
        guest's caller through one process-wide variable, which a failure on
        another thread may overwrite before it is read; the runtime trusts
        the invocation's own record instead.
        """

        def host_function(*args: Any) -> Any:
            try:
                return call(*args)
            except Exception as exc:
                inv = self.current.inv
                if inv is not None and inv.host_error is None:
                    inv.host_error = FunctionTrap(f"function trapped: {exc}")
                raise

        return host_function

    def _inv(self) -> Invocation:
        """The running invocation; past its deadline, the end of it.

        A guest that calls the host back to back (each call returning at
        once: a poll of a clock in the past, an empty write, a log line past
        the cap) keeps taking the GIL, and can starve the epoch ticker of
        it: a 0.3 s timeout ran to 3 s. So every host call ends the run at
        the deadline itself (a clock read, tens of nanoseconds).
        """
        inv = self.current.inv
        if inv is None:
            raise wasmtime.Trap("host function called outside an invocation")
        if time.monotonic() >= inv.deadline:
            raise inv_fail(inv, FunctionTimeout.after(inv.limits.timeout_s))
        return inv

    def get_input_data(self, caller: wasmtime.Caller, ptr: int) -> None:
        """``__get_input_data(ptr)``: copies the JSON args to where the guest reserved room."""
        inv = self._inv()
        _memory(caller, inv).write(ptr, inv.args)

    def insert_response(self, caller: wasmtime.Caller, ptr: int, length: int) -> None:
        """``__insert_response(ptr, len)``: the function's JSON result."""
        inv = self._inv()
        if length & 0xFFFFFFFF > inv.limits.max_output_bytes:
            inv.output_overflow = True
            raise inv_fail(
                inv,
                OutputLimitExceeded(
                    "function response exceeds the output limit of "
                    f"{inv.limits.max_output_bytes} bytes"
                ),
            )
        inv.response = _memory(caller, inv).read(ptr, length)

    def insert_error(self, caller: wasmtime.Caller, ptr: int, length: int) -> None:
        """``__insert_error(ptr, len)``: the function's error message."""
        inv = self._inv()
        limit = inv.limits.max_log_bytes
        inv.error = _memory(caller, inv).read(ptr, min(length & 0xFFFFFFFF, limit))

    def console_log(self, caller: wasmtime.Caller, ptr: int, length: int) -> None:
        """``__console_log(ptr, len)``: a log line, kept while the log budget lasts."""
        inv = self._inv()
        length &= 0xFFFFFFFF
        if (
            inv.log_bytes + length > inv.limits.max_log_bytes
            or len(inv.logs) >= inv.limits.max_log_lines
        ):
            inv.logs_truncated = True
            return
        inv.add_log(_memory(caller, inv).read(ptr, length).decode("utf-8", "replace"))

    def fd_write(
        self, caller: wasmtime.Caller, fd: int, iovs: int, iovs_len: int, nwritten: int
    ) -> int:
        """WASI ``fd_write``: stdout and stderr are kept; there is no other file to write."""
        inv = self._inv()
        if fd not in (1, 2):
            return WASI_ERRNO_BADF
        iovs_len &= 0xFFFFFFFF
        if iovs_len > WASI_IOV_MAX:
            return WASI_ERRNO_INVAL
        memory = _memory(caller, inv)
        spans = [
            memory.span(ptr, length)
            for ptr, length in struct.iter_unpack("<II", memory.read(iovs, iovs_len * 8))
        ]
        size = sum(length for _, length in spans)
        # Copy no more than could be kept: iovecs may name the same memory many times.
        room = inv.stream_room(fd)
        chunks = []
        for ptr, length in spans:
            if room <= 0:
                break
            chunks.append(memory.read(ptr, min(length, room)))
            room -= length
        inv.write_stream(fd, b"".join(chunks), size)
        memory.write(nwritten, u32_le(size))
        return 0

    def poll_oneoff(
        self,
        caller: wasmtime.Caller,
        subs_ptr: int,
        events_ptr: int,
        nsubs: int,
        nevents_ptr: int,
    ) -> int:
        """WASI ``poll_oneoff``: waits for a clock or a stream, never past the deadline.

        A sleep that would end after the invocation's deadline sleeps until
        the deadline and ends the call as a ``FunctionTimeout``, which is
        what it would have come to anyway, without holding the thread on.
        Misaligned or out-of-bounds pointers trap, as in Wasmtime.
        """
        inv = self._inv()
        subs_ptr &= 0xFFFFFFFF
        events_ptr &= 0xFFFFFFFF
        nsubs &= 0xFFFFFFFF
        if subs_ptr % ALIGN or events_ptr % ALIGN or nevents_ptr % 4:
            raise wasmtime.Trap("poll_oneoff given a misaligned pointer")
        if nsubs > MAX_SUBSCRIPTIONS:
            return ERRNO_NOMEM
        memory = _memory(caller, inv)
        if subs_ptr + nsubs * SUBSCRIPTION_SIZE > memory.size:
            raise wasmtime.Trap("poll_oneoff given subscriptions outside the module's memory")
        raw = memory.read(subs_ptr, nsubs * SUBSCRIPTION_SIZE)
        clocks = Clocks(time.monotonic_ns(), time.time_ns(), inv.clock_origin_ns)
        try:
            subs = read_subscriptions(raw, clocks)
        except PollError as exc:
            return exc.errno
        wake_ns = wake_at(subs)
        if wake_ns is not None:
            deadline_ns = math.ceil(inv.deadline * 1e9)
            _sleep_until(min(wake_ns, deadline_ns))
            if wake_ns > deadline_ns:
                raise inv_fail(inv, FunctionTimeout.after(inv.limits.timeout_s))
        events = ready_events(subs, time.monotonic_ns())
        # The guest has not run since: its memory is where it was.
        memory.write(events_ptr, events)
        memory.write(nevents_ptr, u32_le(len(events) // EVENT_SIZE))
        return 0

    def random_get(self, caller: wasmtime.Caller, ptr: int, length: int) -> int:
        """WASI ``random_get``: the OS's randomness, a chunk at a time within the deadline."""
        inv = self._inv()
        memory = _memory(caller, inv)
        start, size = memory.span(ptr, length)
        for offset in range(0, size, RANDOM_CHUNK):
            if time.monotonic() >= inv.deadline:
                raise inv_fail(inv, FunctionTimeout.after(inv.limits.timeout_s))
            memory.write(start + offset, os.urandom(min(RANDOM_CHUNK, size - offset)))
        return 0

    def http_request(
        self,
        caller: wasmtime.Caller,
        resp_ptr: int,
        resp_len_ptr: int,
        status_ptr: int,
        method: int,
        uri_ptr: int,
        uri_len: int,
        hdr_ptr: int,
        hdr_len: int,
        body_ptr: int,
        body_len: int,
    ) -> None:
        """``__http_request``: one outbound HTTP request, allow-listed and capped.

        Writes the status (u16 LE) at ``status_ptr``, the body length (u32 LE)
        at ``resp_len_ptr`` and the body at ``resp_ptr``. FunLess guests leave
        0 at ``resp_len_ptr``; a guest that stores its buffer's capacity there
        gets at most that many bytes. A failed request yields status 0 and an
        empty body, as in FunLess; a host not on the allow-list traps.
        """
        inv = self._inv()
        method_name = HTTP_METHODS.get(method)
        if method_name is None:
            raise inv_fail(inv, FunctionTrap(f"__http_request: unknown method {method}"))
        memory = _memory(caller, inv)
        url = memory.read(uri_ptr, uri_len).decode("utf-8", "replace")
        if not host_allowed(url, inv.limits.http_allow):
            host = urlsplit(url).hostname or url
            raise inv_fail(
                inv,
                FunctionTrap(
                    f"outbound HTTP to {host!r} denied:"
                    " not on the function's or the cluster's allow-list"
                ),
            )
        try:
            headers = parse_headers(memory.read(hdr_ptr, hdr_len).decode("utf-8", "replace"))
        except ValueError as exc:
            raise inv_fail(inv, FunctionTrap(f"__http_request: {exc}")) from None
        body = memory.read(body_ptr, body_len) if body_len else None
        capacity = int.from_bytes(memory.read(resp_len_ptr, 4), "little")
        status, payload = _fetch(method_name, url, headers, body, inv)
        if capacity:
            payload = payload[:capacity]
        # The guest has not run since: its memory is where it was.
        memory.write(status_ptr, u16_le(status))
        memory.write(resp_len_ptr, u32_le(len(payload)))
        memory.write(resp_ptr, payload)


def _sleep_until(when_ns: int) -> None:
    """Sleeps until the host monotonic clock reads ``when_ns`` (sleep may wake early)."""
    while (left := when_ns - time.monotonic_ns()) > 0:
        time.sleep(left / 1e9)


def _fetch(
    method: str, url: str, headers: list[tuple[str, str]], body: bytes | None, inv: Invocation
) -> tuple[int, bytes]:
    """Performs the request within the invocation's time; (0, b"") on failure.

    The whole request (name lookup, connect, TLS, sending, every read) ends
    by ``http_timeout_s`` from now or the invocation's deadline, whichever
    comes first: a server that never answers, or drips its answer a byte at
    a time, holds the thread no longer. Past the invocation's deadline the
    call ends as a ``FunctionTimeout``.
    """
    deadline = min(time.monotonic() + inv.limits.http_timeout_s, inv.deadline)
    # First: it lets ssl in before urllib imports http.client, or https://
    # would be an unknown URL type for the life of the process.
    opener = _opener()
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers))
    request.fless_deadline = deadline  # type: ignore[attr-defined]  # read by _handlers
    cap = inv.limits.http_max_response_bytes
    try:
        with opener.open(request, timeout=max(deadline - time.monotonic(), 0.001)) as response:
            status, payload = response.status, response.read(cap + 1)
    except urllib.error.HTTPError as exc:
        try:
            status, payload = exc.code, exc.read(cap + 1)
        except OSError as read_exc:
            return _failed(inv, method, url, read_exc)
    except (OSError, ValueError) as exc:
        return _failed(inv, method, url, exc)
    if len(payload) > cap:
        raise inv_fail(
            inv,
            OutputLimitExceeded(f"HTTP response from {urlsplit(url).hostname} exceeds {cap} bytes"),
        )
    return status, payload


def inv_fail(inv: Invocation, error: ExecError) -> wasmtime.Trap:
    """Records ``error`` as the invocation's failure and makes the trap that ends it."""
    inv.host_error = error
    return wasmtime.Trap(str(error))


def _failed(inv: Invocation, method: str, url: str, exc: BaseException) -> tuple[int, bytes]:
    """A failed request: status 0, or the end of the call if its deadline has passed."""
    if time.monotonic() >= inv.deadline:
        raise inv_fail(inv, FunctionTimeout.after(inv.limits.timeout_s))
    inv.add_log(f"[fless] http {method} {url} failed: {exc}")
    return 0, b""


@functools.cache
def _opener() -> Any:
    """urllib's opener without redirects or proxies, built at the first request.

    urllib.request costs a worker about a megabyte resident, and most
    functions never make a request. A worker defers ``ssl`` (see
    ``fless._openssl``); it is allowed here, before anything of the worker
    imports http.client, so HTTPS works.
    """
    allow_ssl()
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        # A redirect could lead off the allow-list; the guest sees the 3xx instead.
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(
        NoRedirect, urllib.request.ProxyHandler({}), *_deadline_handlers()
    )


def _deadline_handlers() -> tuple[type, type]:
    """urllib handlers whose connections end at the request's ``fless_deadline``.

    A socket timeout bounds each operation, not the request: a server could
    answer a byte per timeout for ever. These sockets set their timeout to
    what is left before every send and receive, and the name lookup runs
    on a helper thread that is waited for no longer than that.
    """
    import http.client
    import ssl
    import urllib.request

    def deadline_of(req: Any) -> float:
        return float(getattr(req, "fless_deadline", time.monotonic() + req.timeout))

    class HTTPConnection(http.client.HTTPConnection):
        def __init__(self, *args: Any, deadline: float, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.fless_deadline = deadline

        def connect(self) -> None:
            self.sock = _connect(self.host, self.port, self.fless_deadline)

    class HTTPSConnection(http.client.HTTPSConnection):
        def __init__(self, *args: Any, deadline: float, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.fless_deadline = deadline

        def connect(self) -> None:
            sock = _connect(self.host, self.port, self.fless_deadline)
            _DeadlineSocket.arm(sock)
            tls = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]
            tls.fless_deadline = self.fless_deadline
            self.sock = tls

    class DeadlineTLSSocket(ssl.SSLSocket):
        fless_deadline = math.inf

        def recv_into(self, *args: Any, **kwargs: Any) -> int:
            _DeadlineSocket.arm(self)
            return super().recv_into(*args, **kwargs)

        def recv(self, *args: Any, **kwargs: Any) -> bytes:
            _DeadlineSocket.arm(self)
            return super().recv(*args, **kwargs)

        def sendall(self, *args: Any, **kwargs: Any) -> None:
            _DeadlineSocket.arm(self)
            super().sendall(*args, **kwargs)

    @functools.cache
    def tls_context() -> ssl.SSLContext:
        # Made at the first https:// request: loading the CA bundle costs time and memory.
        context = ssl.create_default_context()
        context.sslsocket_class = DeadlineTLSSocket
        return context

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req: Any) -> Any:
            return self.do_open(functools.partial(HTTPConnection, deadline=deadline_of(req)), req)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req: Any) -> Any:
            return self.do_open(
                functools.partial(HTTPSConnection, deadline=deadline_of(req)),
                req,
                context=tls_context(),
            )

    return HTTPHandler, HTTPSHandler


class _DeadlineSocket(socket.socket):
    """A socket whose every send and receive ends by its ``fless_deadline``."""

    fless_deadline = math.inf

    @staticmethod
    def arm(sock: socket.socket) -> None:
        """Sets ``sock``'s timeout to what is left of its deadline; past it, times out."""
        left = getattr(sock, "fless_deadline", math.inf) - time.monotonic()
        if left <= 0:
            raise TimeoutError("the request ran out of time")
        sock.settimeout(left)

    def recv_into(self, *args: Any, **kwargs: Any) -> int:
        self.arm(self)
        return super().recv_into(*args, **kwargs)

    def recv(self, *args: Any, **kwargs: Any) -> bytes:
        self.arm(self)
        return super().recv(*args, **kwargs)

    def sendall(self, *args: Any, **kwargs: Any) -> None:
        self.arm(self)
        super().sendall(*args, **kwargs)

    def send(self, *args: Any, **kwargs: Any) -> int:
        self.arm(self)
        return super().send(*args, **kwargs)


def _connect(host: str, port: int, deadline: float) -> socket.socket:
    """A TCP connection to ``host:port``, looked up and connected by ``deadline``."""
    last: OSError = OSError(f"no address for {host}")
    for family, kind, proto, _, address in _resolve(host, port, deadline):
        sock = _DeadlineSocket(family, kind, proto)
        sock.fless_deadline = deadline
        try:
            _DeadlineSocket.arm(sock)
            sock.connect(address)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last


def _resolve(host: str, port: int, deadline: float) -> list[Any]:
    """``getaddrinfo`` for TCP, given up at ``deadline``.

    The system's resolver has timeouts of its own (seconds, per server and
    try) that no socket timeout shortens, so a name is looked up on one of
    a few helper threads; a lookup that outlives its request finishes there
    alone. An IP address needs no lookup.
    """
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        pass
    future = _resolver().submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos: list[Any] = future.result(timeout=max(deadline - time.monotonic(), 0))
        return infos
    except TimeoutError:
        future.cancel()
        raise TimeoutError(f"looking up {host} ran out of time") from None


@functools.cache
def _resolver() -> Any:
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="fless-resolve")
