"""The flows of the paper's figure 1: create, invoke, update, delete.

The API calls these; they validate, commit to the store, and talk to the
workers. Validation comes first and the store commits before any worker is
told, so bad input changes nothing and a crash loses nothing the client was
told succeeded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from fless._recent import Recent
from fless._ring import RingRecord
from fless.config import FunctionSettings
from fless.exec import (
    CodeBounds,
    CompileLimits,
    ExecError,
    InvalidModule,
    Limits,
    Outcome,
    validate_code,
)
from fless.gossip import GossipError
from fless.worker import Call, error_kind

from . import _metrics
from ._app import ScriptError
from ._app import parse as parse_app
from ._bindings import KINDS, BindingCheck, Bindings, EventPart
from ._dispatch import AppPolicy, Dispatcher
from ._errors import (
    BadRequest,
    CoreError,
    Forbidden,
    NotFound,
    NoWorker,
    TooLarge,
    WorkerLost,
)
from ._json import JsonRefused
from ._json import load as load_json
from ._records import ROLE_ADMIN, FunctionRecord, Subject, check_name, parse_count, shown
from ._secrets import (
    MAX_SECRETS_PER_SUBJECT,
    SecretKeys,
    SecretMissing,
    SecretsOff,
    binding_refs,
    check_value,
)
from ._secrets import parse_names as parse_secret_names
from ._store import Store

log = logging.getLogger("fless.core")

# How many functions' invocation caps a process keeps made.
KEPT_LIMITS = 1024

# Validates uploads, one at a time per process (see ``Platform._check_code``).
_VALIDATOR = ThreadPoolExecutor(1, thread_name_prefix="fless-validate")

# FunLess metadata keys fless accepts and ignores.
_FUNLESS_IGNORED = frozenset({"params", "main_func", "miniSL_services", "miniSL_equation"})
# The longest function tag taken (FunLess's is free text).
MAX_TAG = 64
# A join address's host: a name, IPv4 or IPv6 address, in ASCII only (a lone
# surrogate or a NUL would reach the socket layer and fail there).
_HOST = re.compile(r"[A-Za-z0-9._:\[\]-]{1,255}")
_PORT = re.compile(r"[0-9]{1,5}")
_METADATA_KEYS = (
    frozenset(
        {"memory", "timeout", "http_allow", "capacity", "retries", "tag", "app", "public"}
        | {"secrets"}
    )
    | _FUNLESS_IGNORED
)


@dataclass(frozen=True)
class FunctionSpec:
    """The per-function settings a client may give (None: keep or default)."""

    memory_mib: int | None = None
    timeout_ms: int | None = None
    http_allow: tuple[str, ...] | None = None
    retries: int | None = None
    capacity_kib: int | None = None
    tag: str | None = None
    app: str | None = None
    public: bool | None = None
    secrets: tuple[str, ...] | None = None


# FunLess keeps ``capacity`` in a 32-bit integer column: the values it stores.
_CAPACITY_RANGE = (-(2**31), 2**31 - 1)


def code_bounds(settings: FunctionSettings) -> CodeBounds:
    """The ``max_module_*`` settings: what an uploaded module may declare."""
    return CodeBounds(
        **{
            f.name: getattr(settings, f"max_module_{f.name}")
            for f in dataclasses.fields(CodeBounds)
            if hasattr(settings, f"max_module_{f.name}")
        }
    )


def parse_metadata(raw: object, settings: FunctionSettings) -> FunctionSpec:
    """Checks the ``metadata`` of a create or update.

    Args:
        raw: the decoded JSON (None when the field was absent).
        settings: the cluster's limits.

    Raises:
        BadRequest: naming the key and what is wrong with it.
    """
    if raw is None:
        return FunctionSpec()
    if not isinstance(raw, Mapping):
        raise BadRequest("metadata must be a JSON object")
    unknown = sorted(set(raw) - _METADATA_KEYS)
    if unknown:
        raise BadRequest(
            f"unknown metadata key {unknown[0]!r}; "
            "known: memory, timeout, http_allow, capacity, retries, tag, app, public, secrets"
        )
    # FunLess's capacity (KB) is what its scheduler reserves on a worker, not
    # a cap: 128 as a cap is 1 MiB, too little for a module to start in.
    capacity = raw.get("capacity")
    if capacity is not None:
        capacity = parse_count("metadata capacity", capacity, *_CAPACITY_RANGE)
    memory = _positive_int("memory", raw.get("memory"), settings.max_memory_mib)
    timeout = _positive_int("timeout", raw.get("timeout"), settings.max_timeout_ms)
    allow = raw.get("http_allow")
    if allow is not None and (
        not isinstance(allow, list) or not all(isinstance(h, str) and h for h in allow)
    ):
        raise BadRequest("metadata http_allow must be a list of host names")
    retries = raw.get("retries")
    if retries is not None:
        retries = parse_retries(retries, settings.max_retries, "metadata retries")
    tag = raw.get("tag")
    if tag is not None and (not isinstance(tag, str) or len(tag) > MAX_TAG):
        raise BadRequest(f"metadata tag must be a string of at most {MAX_TAG} characters")
    app = raw.get("app")
    if app is not None and app != "":
        app = check_name("APP script", app)
    public = raw.get("public")
    if public is not None and not isinstance(public, bool):
        raise BadRequest(f"metadata public must be true or false, not {shown(public)}")
    return FunctionSpec(
        memory,
        timeout,
        tuple(allow) if allow is not None else None,
        retries,
        capacity,
        tag,
        app,
        public,
        None if raw.get("secrets") is None else parse_secret_names(raw["secrets"]),
    )


def _script_view(entry: Mapping[str, Any]) -> dict[str, Any]:
    """An APP script as FunLess shows it."""
    return {"id": entry["id"], "name": entry["name"], "script": entry["script"]}


def parse_retries(value: object, most: int, what: str = "retries") -> int:
    """A retry count: an integer from 0 to ``most`` (a numeric string is taken too).

    Raises:
        BadRequest: naming ``what`` and the allowed range.
    """
    return parse_count(what, value, 0, most)


def _positive_int(key: str, value: object, most: int | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"metadata {key} must be a positive integer, not {shown(value)}")
    if most is not None and value > most:
        raise BadRequest(
            f"metadata {key} is {shown(value)}, above this cluster's maximum of {most}"
        )
    return value


def parse_object(body: bytes, example: str = "{...}") -> dict[str, Any]:
    """A request body that must be a JSON object.

    Raises:
        BadRequest: not JSON, or not an object (``example`` shows what is expected).
    """
    try:
        value = load_json(body)
    except JsonRefused as exc:
        raise BadRequest(f"request body refused: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest(f"request body must be a JSON object like {example}")
    return value


def parse_args(body: bytes) -> bytes:
    """The JSON-encoded ``args`` of an invoke body (``{}`` when absent).

    Raises:
        BadRequest: the body is not JSON, not an object, or ``args`` is not an object.
    """
    return parse_invoke(body)[0]


# Why an invoke body gave no ``args`` (``parse_invoke``): FunLess runs the
# function with ``{}`` then, which a client sending the args unwrapped
# (``{"name": "edge"}``) would not notice.
NO_ARGS_EMPTY = "empty-body"
NO_ARGS_FIELD = "no-args-field"


def parse_invoke(body: bytes) -> tuple[bytes, object, str | None]:
    """The JSON-encoded ``args`` of an invoke body (``{}`` when absent), its
    ``scheduling`` as given (None when absent; ``Platform.invoke`` checks it),
    and why no args were given (``NO_ARGS_EMPTY``, ``NO_ARGS_FIELD``; None
    when they were).

    Raises:
        BadRequest: the body is not JSON, not an object, or ``args`` is not an object.
    """
    if not body.strip():
        return b"{}", None, NO_ARGS_EMPTY
    payload = parse_object(body, '{"args": {...}}')
    if "args" not in payload:
        return b"{}", payload.get("scheduling"), NO_ARGS_FIELD
    args = payload["args"]
    if not isinstance(args, dict):
        raise BadRequest('"args" must be a JSON object')
    encoded = json.dumps(args, separators=(",", ":"), ensure_ascii=False).encode()
    return encoded, payload.get("scheduling"), None


class Service(Protocol):
    """A part the platform starts and stops with itself (gossip, RPC, a worker)."""

    async def start(self) -> None:
        """Begins serving."""

    async def stop(self) -> None:
        """Finishes and releases what it holds."""


class Platform:
    """The core's operations on functions and modules.

    Args:
        store: the function store.
        dispatcher: where functions run.
        settings: the cluster's function limits.
        max_upload_bytes: the largest code accepted.
        services: started with the platform, stopped in reverse order.
        nodes: the cluster's members as the API shows them.
        join: asks gossip to join a node at ``HOST:PORT``.
        recent: where the latest invocations are recorded (None: nowhere).
        refresh_metrics: sets the gauges a scrape reads (members, memory).
        metrics: where invocations are counted (None: metrics are off).
        bindings: checks a function's events and sinks (None: this node
            connects none, and a function that names some is refused).
        secret_keys: seals and opens secrets (None: the node has no cluster
            keys, and refuses secrets).
    """

    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        settings: FunctionSettings,
        max_upload_bytes: int,
        services: Sequence[Service] = (),
        nodes: Callable[[], list[dict[str, object]]] = list,
        join: Callable[[str], Awaitable[None]] | None = None,
        recent: Recent | RingRecord | None = None,
        refresh_metrics: Callable[[], None] = lambda: None,
        metrics: _metrics.NodeMetrics | None = None,
        bindings: Bindings | None = None,
        secret_keys: SecretKeys | None = None,
    ) -> None:
        self.metrics = metrics
        self._secret_keys = secret_keys
        self.bindings = bindings
        # The running event part (set by the node once it has the platform):
        # ``?async=true`` invocations and the bindings' state; None: none runs.
        self.event_part: EventPart | None = None
        self.nodes = nodes
        self.recent = recent
        self.refresh_metrics = refresh_metrics
        self._join = join
        self.store = store
        self.dispatcher = dispatcher
        self.settings = settings
        self.max_upload_bytes = max_upload_bytes
        self._services = list(services)
        self._background: set[asyncio.Task[None]] = set()
        # Every invocation's caps, by what they depend on in its record (the
        # settings are fixed): made once, not on every call.
        self._limits: dict[tuple[str, int, int, tuple[str, ...]], Limits] = {}

    async def join(self, address: str) -> None:
        """Joins the node at ``HOST:PORT`` (its gossip port) to this cluster.

        Raises:
            BadRequest: not ``HOST:PORT``, or no cluster to join.
            WorkerLost: the node did not answer.
        """
        host, sep, port = address.rpartition(":")
        if (
            not sep
            or not _HOST.fullmatch(host)
            or not _PORT.fullmatch(port)
            or not 0 < int(port) < 65536
        ):
            raise BadRequest(
                f"address must be HOST:PORT (the node's gossip port), not {shown(address)}"
            )
        if self._join is None:
            raise BadRequest("this node is not part of a cluster")
        try:
            await self._join(address)
        except (OSError, TimeoutError, RuntimeError, GossipError) as exc:
            # Nothing answered there: the documented 502, as for a lost worker.
            raise WorkerLost(f"could not join {address}: {exc}") from None

    def add_service(self, service: Service) -> None:
        """Adds a service that needs the platform itself (the event part); before ``start``."""
        self._services.append(service)

    async def start(self) -> None:
        """Seals secrets again under the key in use if it changed; starts the services."""
        if self._secret_keys is not None:
            # After a key rotation (keys/previous/), so that removing the old
            # key later loses no secret. The first API process does it.
            resealed = self.store.reseal_secrets(self._secret_keys.reseal)
            if resealed:
                log.info("secrets sealed again under the cluster's current key: %d", resealed)
        for service in self._services:
            await service.start()
        if self.metrics is not None:
            self.metrics.defer_writes(asyncio.get_running_loop())

    async def stop(self) -> None:
        """Stops the services, writes the queued metrics, then closes the store."""
        try:
            for service in reversed(self._services):
                try:
                    await service.stop()
                except Exception:
                    log.exception("stopping %s failed", type(service).__name__)
        finally:
            if self.metrics is not None:
                self.metrics.defer_writes(None)
        self.store.close()
        if self.recent is not None:
            self.recent.close()

    # -- helpers ------------------------------------------------------------

    def limits(self, record: FunctionRecord) -> Limits:
        """The caps one invocation of ``record`` runs under (the same for the same record)."""
        key = (record.abi, record.memory_mib, record.timeout_ms, record.http_allow)
        limits = self._limits.get(key)
        if limits is None:
            if len(self._limits) >= KEPT_LIMITS:
                self._limits.clear()
            limits = self._limits[key] = self._make_limits(record)
        return limits

    def _make_limits(self, record: FunctionRecord) -> Limits:
        fn = self.settings
        return Limits(
            memory_bytes=record.memory_mib * 1024 * 1024,
            timeout_s=record.timeout_ms / 1000,
            max_output_bytes=fn.max_output_bytes,
            max_log_bytes=fn.max_log_bytes,
            max_log_lines=fn.max_log_lines,
            http_allow=frozenset(record.http_allow) | frozenset(fn.http_allow),
            http_timeout_s=fn.http_timeout_ms / 1000,
            http_max_response_bytes=fn.http_max_response_bytes,
            table_elements=fn.max_module_table_elements,
            tables=fn.max_module_tables,
        ).for_abi(record.abi)

    async def _check_code(self, code: bytes) -> str:
        if len(code) > self.max_upload_bytes:
            raise TooLarge(
                f"code is {len(code)} bytes, above the upload limit of {self.max_upload_bytes}"
            )
        # Off the event loop: validating 46 MB took 2 s, every request of the
        # process waiting. One thread: one upload's validator memory at a time.
        limits = CompileLimits(
            timeout_s=self.settings.validate_timeout_s,
            memory_bytes=self.settings.validate_memory_mib << 20,
        )
        abi = await asyncio.get_running_loop().run_in_executor(
            _VALIDATOR, validate_code, code, code_bounds(self.settings), limits
        )
        return abi.value

    async def _push(self, sha: str, code: bytes, wait: bool) -> int:
        """Sends code to the workers; how many took it (0 when not waiting)."""
        if wait:
            return await self.dispatcher.push(sha, code)
        task = asyncio.create_task(self._push_quietly(sha, code))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return 0

    async def _push_quietly(self, sha: str, code: bytes) -> None:
        try:
            await self.dispatcher.push(sha, code)
        except Exception:
            log.exception("pushing code %s to the workers failed", sha[:12])

    async def _drop_unused(self, sha: str) -> None:
        if not self.store.has_code(sha):
            await self.dispatcher.drop(sha)

    # -- flows ---------------------------------------------------------------

    async def check_bindings(self, kind: str, entries: Sequence[object]) -> list[BindingCheck]:
        """Checks the ``events`` or ``sinks`` a create or update names, one result per entry.

        A refused entry is a result with its reason, not an error: the
        function is created or updated with the others (FunLess's 207).

        Raises:
            BadRequest: this node connects no bindings.
        """
        if kind not in KINDS:
            raise ValueError(f"no binding kind {kind!r}")
        if not entries:
            return []
        if self.bindings is None:
            raise BadRequest(f"this node does not connect {kind}; send none")
        return await self.bindings.check(kind, entries)

    async def create_function(
        self,
        module: str,
        name: str,
        code: bytes,
        metadata: object,
        wait: bool = True,
        events: Sequence[dict[str, Any]] = (),
        sinks: Sequence[dict[str, Any]] = (),
        subject: Subject | None = None,
    ) -> tuple[FunctionRecord, int]:
        """Validates, stores and pushes a new function.

        Args:
            events: bindings that invoke it, as ``check_bindings`` kept them.
            sinks: where its results go, likewise.
            subject: who creates it: the secrets it names are this subject's
                (None: the admin's).

        Returns:
            The stored record and how many workers hold its code.
        """
        check_name("function", name)
        spec = parse_metadata(metadata, self.settings)
        abi = await self._check_code(code)
        now = time.time()
        record = FunctionRecord(
            module=module,
            name=name,
            hash=hashlib.sha256(code).hexdigest(),
            size=len(code),
            abi=abi,
            memory_mib=spec.memory_mib or self.settings.default_memory_mib,
            timeout_ms=spec.timeout_ms or self.settings.default_timeout_ms,
            http_allow=spec.http_allow or (),
            retries=spec.retries or 0,
            capacity_kib=spec.capacity_kib,
            tag=spec.tag or "",
            app=spec.app or "",
            is_public=bool(spec.public),
            created=now,
            updated=now,
            events=tuple(events),
            sinks=tuple(sinks),
            secrets=spec.secrets or (),
        )
        record = self._with_secrets_owner(record, None, subject)
        self.store.put_function(record, code)
        try:
            workers = await self._push(record.hash, code, wait)
        except InvalidModule:
            # A worker could not compile it (past its compile limits, say): the
            # upload is refused whole, not kept as a function that never runs.
            await self.delete_function(module, name)
            raise
        log.info("created function %s/%s (%d bytes, %s ABI)", module, name, len(code), abi)
        return record, workers

    async def update_function(
        self,
        module: str,
        name: str,
        code: bytes | None,
        metadata: object,
        new_name: str | None = None,
        wait: bool = True,
        events: Sequence[dict[str, Any]] | None = None,
        sinks: Sequence[dict[str, Any]] | None = None,
        subject: Subject | None = None,
    ) -> tuple[FunctionRecord, int]:
        """Replaces a function's code and/or settings, or renames it.

        Args:
            events: the bindings that replace its events (None: keep them).
            sinks: the bindings that replace its sinks (None: keep them).
            subject: who updates it (None: the admin). A function that uses
                secrets is changed only by their owner or the admin.

        Raises:
            Forbidden: the function uses another subject's secrets.
        """
        old = self.store.get_function(module, name)
        spec = parse_metadata(metadata, self.settings)
        changes: dict[str, Any] = {"updated": time.time()}
        if new_name is not None:
            changes["name"] = check_name("function", new_name)
        if code is not None:
            changes["abi"] = await self._check_code(code)
            changes["hash"] = hashlib.sha256(code).hexdigest()
            changes["size"] = len(code)
        if spec.memory_mib is not None:
            changes["memory_mib"] = spec.memory_mib
        if spec.timeout_ms is not None:
            changes["timeout_ms"] = spec.timeout_ms
        if spec.http_allow is not None:
            changes["http_allow"] = spec.http_allow
        if spec.retries is not None:
            changes["retries"] = spec.retries
        if spec.capacity_kib is not None:
            changes["capacity_kib"] = spec.capacity_kib
        if spec.tag is not None:
            changes["tag"] = spec.tag
        if spec.app is not None:
            changes["app"] = spec.app
        if spec.public is not None:
            changes["is_public"] = spec.public
        if events is not None:
            changes["events"] = tuple(events)
        if sinks is not None:
            changes["sinks"] = tuple(sinks)
        if spec.secrets is not None:
            changes["secrets"] = spec.secrets
        record = self._with_secrets_owner(dataclasses.replace(old, **changes), old, subject)
        workers = 0
        if code is not None and wait:
            # Compiled by the workers before it is stored: code they refuse
            # (past a compile limit, say) is a 400 that leaves the function
            # as it was, not one that can no longer run.
            try:
                workers = await self._push(record.hash, code, wait)
            except Exception:
                await self._drop_unused(record.hash)
                raise
        try:
            self.store.put_function(record, code, replace=name)
        except CoreError:
            if code is not None and wait:
                await self._drop_unused(record.hash)
            raise
        if code is not None:
            if not wait:
                workers = await self._push(record.hash, code, wait)
            if record.hash != old.hash:
                await self._drop_unused(old.hash)
        log.info("updated function %s/%s", module, record.name)
        return record, workers

    # -- modules, functions and subjects, as the API reads and changes them --
    # (the store is the core's: the API goes through these, never past them)

    def functions_generation(self) -> int:
        """A number that changes whenever a function is created, changed or deleted."""
        return self.store.generation()

    def all_functions(self) -> list[FunctionRecord]:
        """Every function of every module (the event part follows their bindings)."""
        return self.store.all_functions()

    def modules(self) -> list[str]:
        """Every module's name."""
        return self.store.list_modules()

    def create_module(self, name: str) -> None:
        """Creates an empty module.

        Raises:
            BadRequest: the name breaks the naming rule.
            AlreadyExists: a module has that name.
        """
        self.store.create_module(name)

    def has_module(self, module: str) -> bool:
        """Whether ``module`` exists."""
        return self.store.has_module(module)

    def module_functions(self, module: str) -> list[FunctionRecord]:
        """The functions of ``module``.

        Raises:
            NotFound: no such module.
        """
        return self.store.list_functions(module)

    def rename_module(self, module: str, new: str) -> list[FunctionRecord]:
        """Renames a module; its functions (and their code, by hash) move with it."""
        return self.store.rename_module(module, new)

    def function(self, module: str, name: str) -> FunctionRecord:
        """A function's record.

        Raises:
            NotFound: naming the module or the function that is missing.
        """
        return self.store.get_function(module, name)

    def binding_states(self, record: FunctionRecord) -> dict[str, Any] | None:
        """How the function's events and sinks fare now (None: it has none, or none run)."""
        if self.event_part is None or not (record.events or record.sinks):
            return None
        return self.event_part.binding_states(record)

    async def code_holders(self, record: FunctionRecord) -> list[str]:
        """The workers whose cache holds the function's code now."""
        return await self.dispatcher.holders(record.hash)

    def authenticate(self, key: str) -> Subject | None:
        """The subject whose key this is, if any."""
        return self.store.authenticate(key)

    def subjects(self) -> list[Subject]:
        """Every subject (their key hashes stay in the store)."""
        return self.store.list_subjects()

    def create_subject(self, name: str) -> str:
        """Creates a user; its key, shown once."""
        return self.store.create_subject(name)

    def reset_key(self, name: str, keep: Callable[[str], object] | None = None) -> str:
        """A new key for ``name``, the old one refused from now; ``keep`` saves it
        inside the store's write transaction (see ``Store.reset_key``)."""
        return self.store.reset_key(name, keep=keep)

    def delete_subject(self, name: str) -> Subject:
        """Revokes a user and its key."""
        return self.store.delete_subject(name)

    async def delete_function(self, module: str, name: str) -> FunctionRecord:
        """Deletes a function and drops its code from the workers if unused."""
        record = self.store.delete_function(module, name)
        await self._drop_unused(record.hash)
        log.info("deleted function %s/%s", module, name)
        return record

    async def delete_module(self, module: str) -> list[FunctionRecord]:
        """Deletes a module and its functions."""
        gone = self.store.delete_module(module)
        for sha in {r.hash for r in gone}:
            await self._drop_unused(sha)
        log.info("deleted module %s with %d functions", module, len(gone))
        return gone

    async def invoke(
        self,
        module: str,
        name: str,
        args: bytes,
        retries: int | str | None = None,
        invocation: str | None = None,
        record: FunctionRecord | None = None,
        scheduling: object = None,
    ) -> Outcome:
        """Runs a function once, and records the invocation.

        Args:
            module: the function's module.
            name: the function's name.
            args: the JSON-encoded arguments.
            retries: how often to retry on another worker if the chosen one is
                lost (a string as given in a query); None takes the
                function's own setting.
            invocation: the invocation's id (``new_invocation_id``); one is
                made when None.
            record: the function's record, when the caller has just read it
                (the event part, which needs its sinks); None reads it.
            scheduling: ``{"language": "app", "script": NAME}`` places the call
                by that APP script, ``{"language": "none"}`` by free memory;
                None: by the function's own ``app`` if it names one.

        Raises:
            NotFound: before any worker is asked (the function, or its APP script).
            BadRequest: ``retries`` or ``scheduling`` is wrong, or the APP
                script has neither the function's tag nor ``default``.
            ExecError: how the function failed.
        """
        # The call's time counts from its arrival: queues, loading and
        # compiling, retries and the run all fit in it (see Dispatcher.invoke).
        arrived = time.monotonic()
        if record is None:
            record = self.store.get_function(module, name)
        if retries is None:
            retries = record.retries
        else:
            retries = parse_retries(retries, self.settings.max_retries)
        app = self._app_policy(record, scheduling)
        limits = self.limits(record)
        if record.secrets:
            # Opened for each call, never kept: a changed secret counts from
            # the next call, and no cache holds a value.
            limits = dataclasses.replace(limits, env=self._secret_env(record))
        call = Call(invocation or new_invocation_id(), f"{module}/{name}")
        started, clock = time.time(), time.monotonic()
        outcome_kind, worker, attempts = "ok", "", 1
        try:
            outcome = await self.dispatcher.invoke(
                record.hash,
                args,
                limits,
                lambda: self.store.get_code(record.hash),
                retries,
                call,
                deadline=arrived + record.timeout_ms / 1000,
                tag=record.tag or None,
                app=app,
            )
            worker, attempts = outcome.worker, outcome.attempts
            return outcome
        except ExecError as exc:
            outcome_kind, worker = error_kind(exc), exc.worker
            raise
        except NoWorker:
            outcome_kind = "no_worker"
            raise
        except WorkerLost:
            outcome_kind = "lost"
            raise
        finally:
            self._remember(call, module, name, started, clock, outcome_kind, worker, attempts)
            metrics = self.metrics
            if metrics is not None:
                metrics.count_invocation(module, name, outcome_kind)
                metrics.invoke_seconds.observe(time.monotonic() - clock)

    def _app_policy(self, record: FunctionRecord, scheduling: object) -> AppPolicy | None:
        """The APP script a call is placed by, if any (see ``invoke``)."""
        if scheduling is None:
            if not record.app:
                return None
            script = record.app
        else:
            if not isinstance(scheduling, dict):
                scheduling = {}
            language = scheduling.get("language")
            if language not in ("none", "app"):
                raise BadRequest(
                    'scheduling is {"language": "none"} or {"language": "app", "script": NAME}'
                )
            if language == "none":
                return None
            named = scheduling.get("script")
            if not isinstance(named, str) or not named:
                raise BadRequest('scheduling.script names the APP script ({"language": "app"})')
            script = named
        return AppPolicy(script, self.store.get_script(script)["script"])

    # -- secrets --------------------------------------------------------------

    def _keys(self) -> SecretKeys:
        if self._secret_keys is None:
            raise SecretsOff(
                "this node has no cluster keys to encrypt secrets with "
                "(cluster.insecure): run 'fless-node keygen' and restart it"
            )
        return self._secret_keys

    def set_secret(self, subject: Subject, name: str, value: object) -> tuple[dict[str, Any], bool]:
        """Seals and stores ``subject``'s secret ``name``; its entry, and whether it is new.

        Raises:
            BadRequest: a bad name or value (never quoted), too many secrets,
                or no cluster keys.
        """
        check_name("secret", name)
        text = check_value(value)
        sealed = self._keys().seal(subject.name, name, text)
        created = self.store.put_secret(subject.name, name, sealed, MAX_SECRETS_PER_SUBJECT)
        log.info("%s secret %s of %s", "created" if created else "replaced", name, subject.name)
        entry = next(e for e in self.store.secret_entries(subject.name) if e["name"] == name)
        return entry, created

    def secrets_of(self, subject: Subject) -> list[dict[str, Any]]:
        """``subject``'s secrets: ``{"name", "created", "updated"}`` by name, never a value."""
        return self.store.secret_entries(subject.name)

    def delete_secret(self, subject: Subject, name: str) -> None:
        """Removes ``subject``'s secret ``name``; functions naming it then fail, naming it.

        Raises:
            NotFound: no such secret.
        """
        self.store.delete_secret(subject.name, name)
        log.info("deleted secret %s of %s", name, subject.name)

    def secret_value(self, owner: str, name: str, user: str) -> str:
        """The value of ``owner``'s secret ``name``, for ``user`` (what names it, for errors).

        Raises:
            SecretMissing: ``owner`` has no such secret (the message names it, never a value).
            SecretUnreadable: it does not open with this node's keys.
        """
        sealed = self.store.sealed_secret(owner, name)
        if sealed is None:
            raise SecretMissing(
                f"{user} names secret {name}, which {owner or 'nobody'} has not set "
                f"(fless secret set {name})"
            )
        return self._keys().open(owner, name, sealed)

    def _secret_env(self, record: FunctionRecord) -> tuple[tuple[str, str], ...]:
        user = f"function {record.module}/{record.name}"
        return tuple(
            (name, self.secret_value(record.secrets_of, name, user)) for name in record.secrets
        )

    def _with_secrets_owner(
        self, record: FunctionRecord, old: FunctionRecord | None, subject: Subject | None
    ) -> FunctionRecord:
        """``record`` with the subject whose secrets it uses, once the caller may use them.

        A function that uses secrets is changed only by their owner or the
        admin: anyone else could change its code to print them, or its
        sinks to send them away. The secrets it names must exist now (they
        are read again at each call and connection).

        Raises:
            Forbidden: ``old`` uses secrets of another subject than ``subject``.
            SecretMissing: a secret named is not set.
        """
        admin = subject is None or subject.role == ROLE_ADMIN
        if (
            old is not None
            and subject is not None
            and not admin
            and subject.name != old.secrets_of
            and _names_secrets(old)
        ):
            raise Forbidden(
                f"function {old.module}/{old.name} uses secrets of {old.secrets_of}: "
                f"only {old.secrets_of} or the admin may change it"
            )
        names = _names_secrets(record)
        if not names:
            return dataclasses.replace(record, secrets_of="")
        if old is not None and old.secrets_of and admin:
            owner = old.secrets_of
        else:
            owner = subject.name if subject is not None else "admin"
        self._keys()
        for name in sorted(names):
            if self.store.sealed_secret(owner, name) is None:
                raise SecretMissing(
                    f"secret {name} is not set for {owner}: set it first "
                    f"(fless secret set {name}), then name it"
                )
        return dataclasses.replace(record, secrets_of=owner)

    # -- APP scripts ----------------------------------------------------------

    def app_scripts(self) -> list[dict[str, Any]]:
        """Every APP script, by name: ``{"id", "name", "script"}`` (parsed)."""
        return [_script_view(entry) for entry in self.store.list_scripts()]

    def app_script(self, name: str) -> dict[str, Any]:
        """One APP script.

        Raises:
            NotFound: no script of that name.
        """
        return _script_view(self.store.get_script(name))

    def put_app_script(self, name: str, text: str | bytes, replace: bool = False) -> dict[str, Any]:
        """Parses and stores an APP script (``replace``: the one of that name).

        Raises:
            BadRequest: it does not parse (naming the tag and the reason), or a bad name.
            NameTaken: creating, and the name is taken.  NotFound: replacing none.
        """
        check_name("APP script", name)
        if replace:
            self.store.get_script(name)  # 404 for none, before the text is read
        try:
            parsed = parse_app(text)
        except ScriptError as exc:
            raise BadRequest(f"APP script {name}: {exc}") from None
        entry = self.store.put_script(name, parsed, replace=replace)
        log.info("%s APP script %s", "replaced" if replace else "created", name)
        return _script_view(entry)

    def delete_app_script(self, name: str) -> None:
        """Removes an APP script (functions naming it then fail with 404 until it is back).

        Raises:
            NotFound: no script of that name.
        """
        self.store.delete_script(name)
        log.info("deleted APP script %s", name)

    def invoke_later(
        self,
        module: str,
        name: str,
        args: bytes,
        callback: str | None = None,
        scheduling: object = None,
    ) -> str:
        """Queues an invocation to run as soon as a worker can (at least once); its id.

        Raises:
            NotFound: no such function.
            Busy: the queue is full.
            BadRequest: this node runs no queued invocations, or a bad ``callback``.
        """
        self.store.get_function(module, name)
        if isinstance(scheduling, dict) and scheduling.get("language") == "app":
            # A queued call runs later, placed by the function's own script.
            raise BadRequest(
                "scheduling does not go with ?async=true: a queued call is placed by"
                " the function's own APP script (its metadata app)"
            )
        if self.event_part is None:
            raise BadRequest("this node does not run queued invocations (events.enabled)")
        invocation = new_invocation_id()
        self.event_part.enqueue(module, name, args, invocation, callback)
        return invocation

    def invocation(self, invocation: str) -> dict[str, Any]:
        """A queued invocation's state, and its result or error once it ran.

        Raises:
            NotFound: unknown, or its record expired.
        """
        status = None if self.event_part is None else self.event_part.status(invocation)
        if status is None:
            raise NotFound(f"invocation {shown(invocation, 60)} not found (or expired)")
        return status

    def _remember(
        self,
        call: Call,
        module: str,
        name: str,
        started: float,
        clock: float,
        outcome: str,
        worker: str,
        attempts: int,
    ) -> None:
        if self.recent is None:
            return
        entry = {
            "id": call.id,
            "module": module,
            "name": name,
            "worker": worker,
            "outcome": outcome,
            "attempts": attempts,
            "started": started,
            "duration_ms": round((time.monotonic() - clock) * 1000, 3),
        }
        try:
            self.recent.add(call.fn, entry)
        except Exception:
            log.exception("recording invocation %s failed", call.id)

    def recent_invocations(self, limit: int) -> list[dict[str, Any]]:
        """The latest invocations this core ran (any of its API processes), newest first,
        as recorded (``started`` in seconds since the epoch)."""
        if self.recent is None:
            return []
        return self.recent.latest(None, limit)

    async def function_logs(self, module: str, name: str, limit: int) -> list[dict[str, Any]]:
        """What the function logged in its latest invocations, from every worker,
        as the workers recorded it (a remote worker's entries are not checked).

        Raises:
            NotFound: no such function.
        """
        self.store.get_function(module, name)
        return await self.dispatcher.logs(f"{module}/{name}", limit)


def _names_secrets(record: FunctionRecord) -> set[str]:
    """Every secret ``record`` names: in its environment and in its bindings' params."""
    return set(record.secrets) | set(binding_refs(record.events)) | set(binding_refs(record.sinks))


def new_invocation_id() -> str:
    """A fresh invocation id: 16 hex digits, unique enough to find one call in logs."""
    return secrets.token_hex(8)
