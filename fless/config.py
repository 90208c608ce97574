"""Settings: embedded defaults < config file < ``FLESS_*`` environment < flags.

The defaults live in the dataclasses below; ``conf/fless.toml`` documents every
one of them (a test keeps the two equal). A setting ``[section] key`` is
``FLESS_SECTION_KEY`` in the environment, a top-level ``key`` is ``FLESS_KEY``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fless._units import MiB

ROLES = ("all", "core", "worker")
# ``lan``: serve the LAN, keep to loopback, or decide by role (``serves_lan``).
LAN_CHOICES = ("auto", "on", "off")
LOOPBACK = "127.0.0.1"
EVERY_INTERFACE = "0.0.0.0"
LOG_LEVELS = ("debug", "info", "warning", "error")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
# A worker's name and labels travel in its gossip metadata (480 bytes in all):
# short, and from a set that needs no escaping.
WORKER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,23}")
MAX_LABELS = 8


class ConfigError(ValueError):
    """A setting is unknown or has a value of the wrong kind."""


@dataclass(frozen=True)
class ApiSettings:
    """The REST API of a core."""

    # Empty: by ``lan`` (127.0.0.1, or 0.0.0.0 on a node that serves the LAN).
    host: str = ""
    port: int = 4000
    # 0: one per CPU with role "all", one with role "core" (see fless.node).
    workers: int = 0
    max_upload_bytes: int = 50 * MiB
    max_request_bytes: int = 8 * MiB
    # Bytes of request bodies over 64 KiB one API process holds at once
    # (while their requests run); past it, such a request gets 503 at once.
    max_body_bytes_in_flight: int = 128 * MiB
    recent_invocations: int = 1000
    # Serve Prometheus metrics at /metrics (with an API key, as every route).
    metrics: bool = True
    # Off by default: a private cluster's own clients are trusted to pace
    # themselves, and a limit that trips a legitimate burst loses invocations.
    rate_limit_per_s: int = 0
    rate_burst: int = 100
    # The public trigger (/fn/MODULE/NAME) without a key: requests per second
    # per client address, per API process, and how many at once (0: no limit).
    # On by default: its callers are anyone who can reach the port.
    public_rate_per_s: int = 10
    public_rate_burst: int = 20
    # PEM files; both set serves HTTPS, both empty plain HTTP.
    tls_certfile: str = ""
    tls_keyfile: str = ""
    # The HTTP server's own limits, per connection and per API process (see
    # docs/SECURITY.md): a request head (request line and headers) larger
    # than this is answered 431, as is one with more header fields; a head
    # not complete this long after the connection opened (or the request
    # began) closes the connection; connections past the bound get 503.
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    header_timeout_ms: int = 10_000
    max_connections: int = 256
    # A request body that sends no byte for this long (while the node is
    # reading it), or a client that reads no byte of its answer for this
    # long, closes the connection.
    body_timeout_ms: int = 30_000


@dataclass(frozen=True)
class FunctionSettings:
    """Limits applied to every function, and the defaults of per-function ones."""

    default_memory_mib: int = 64
    max_memory_mib: int = 2048
    default_timeout_ms: int = 10_000
    max_timeout_ms: int = 300_000
    max_output_bytes: int = 4 * MiB
    max_log_bytes: int = 64 * 1024
    # Log lines kept per invocation (console log calls, stderr writes).
    max_log_lines: int = 1000
    http_allow: tuple[str, ...] = ()
    http_timeout_ms: int = 5_000
    http_max_response_bytes: int = 4 * MiB
    max_retries: int = 5
    # What an uploaded module may declare (each core module of a component
    # alike); past any, the upload is refused with 400 before it is stored.
    # Wide of every real module measured (docs/SECURITY.md). The table bound
    # also caps a table's growth at run time, and max_module_tables the
    # tables an instance may create.
    max_module_functions: int = 50_000
    max_module_function_bytes: int = 2 * MiB
    max_module_locals: int = 50_000
    max_module_total_locals: int = 200_000
    max_module_types: int = 20_000
    max_module_imports: int = 5_000
    max_module_exports: int = 20_000
    max_module_globals: int = 10_000
    max_module_tables: int = 4
    max_module_table_elements: int = 100_000
    max_module_element_segments: int = 10_000
    max_module_data_segments: int = 100_000
    # A module over 64 KiB is validated in a child process, stopped past
    # these: the validator's time is not bounded by a module's size.
    validate_timeout_s: int = 30
    validate_memory_mib: int = 512


@dataclass(frozen=True)
class WorkerSettings:
    """The Wasm executor and its cache of compiled modules."""

    threads: int = 2
    cache_max_bytes: int = 1024 * MiB
    cache_ttl_s: int = 2700
    memory_mib: int = 0
    reserved_mib: int = 128
    log_entries: int = 1000
    log_max_bytes: int = 8 * MiB
    # A worker serves Prometheus metrics on this port of cluster.rpc_host; 0: off.
    metrics_port: int = 0
    # A compile runs in a child process killed past this time, or past this
    # much memory (beyond the child's own); the upload gets a 400.
    compile_timeout_s: int = 120
    compile_memory_mib: int = 1024
    # Compiled modules kept loaded in memory, by the size of their machine code.
    loaded_max_mib: int = 256
    # The name APP scripts list this worker by (empty: the node's own name),
    # and labels a script's block can select it by ({label: camera}).
    name: str = ""
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClusterSettings:
    """How nodes find and talk to each other."""

    # Empty: by ``lan``, as api.host.
    rpc_host: str = ""
    rpc_port: int = 7470
    gossip_port: int = 7471
    advertise_host: str = ""
    seeds: tuple[str, ...] = ()
    discovery: bool = True
    beacon_group: str = "239.255.74.70"
    beacon_port: int = 7472
    key_dir: str = ""
    insecure: bool = False


@dataclass(frozen=True)
class EventSettings:
    """A core's event part: bindings, their queues and the outbox (docs/EVENTS.md)."""

    # Connect the functions' events and sinks; off, a function naming any is refused.
    enabled: bool = True
    # Hosts bindings may connect to ("*": any; else names or addresses, as
    # functions.http_allow): an MQTT broker, a CouchDB, an HTTP sink.
    hosts: tuple[str, ...] = ("*",)
    # Messages and async calls waiting to run, and results waiting for their
    # sinks, at most (each; past it an MQTT message waits at its broker, an
    # async call gets 429, and a result is dropped, counted and logged).
    max_queued: int = 100_000
    max_outbox: int = 100_000
    # fsync each queue commit: survives a power cut, at a disk flush per
    # message; without it a committed message survives any crash of fless.
    sync: bool = False
    # How long checking that a binding connects may take, at a create or update.
    connect_timeout_ms: int = 3_000
    # A sink that fails is tried again after 1 s, doubling up to this.
    retry_max_ms: int = 60_000
    # Event bindings (MQTT topics, cron schedules) a core serves at most, over
    # all functions: each MQTT one is a connection and a thread.
    max_event_bindings: int = 256
    # How long the state and result of a finished ?async=true invocation is kept.
    results_ttl_s: int = 3600


@dataclass(frozen=True)
class Settings:
    """Everything a ``fless-node`` is configured with."""

    role: str = "all"
    # "on": API, RPC and gossip on every interface, and the LAN beacon;
    # "off": loopback only; "auto": on for roles core and worker, off for all.
    lan: str = "auto"
    data_dir: str = ""
    log_level: str = "info"
    # How long a stopping node lets the calls it holds finish, in seconds.
    drain_timeout_s: int = 30
    api: ApiSettings = field(default_factory=ApiSettings)
    functions: FunctionSettings = field(default_factory=FunctionSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    events: EventSettings = field(default_factory=EventSettings)

    @property
    def data_path(self) -> Path:
        """The data directory, resolved: the setting, else a per-user default."""
        if self.data_dir:
            return Path(self.data_dir).expanduser()
        return default_data_dir()

    @property
    def key_path(self) -> Path:
        """The directory of the cluster's keys: the setting, else ``keys`` in the data dir."""
        if self.cluster.key_dir:
            return Path(self.cluster.key_dir).expanduser()
        return self.data_path / "keys"


def default_data_dir() -> Path:
    """Where a node keeps its data when ``data_dir`` is not set.

    ``$XDG_DATA_HOME/fless`` (``~/.local/share/fless``) for a user; a system
    service sets ``data_dir`` (or ``STATE_DIRECTORY``) explicitly.
    """
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":")[0])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fless"


_SECTION_TYPES: dict[str, type[Any]] = {
    "api": ApiSettings,
    "functions": FunctionSettings,
    "worker": WorkerSettings,
    "cluster": ClusterSettings,
    "events": EventSettings,
}


def _field_types(cls: type[Any]) -> dict[str, Any]:
    defaults = cls()
    return {f.name: type(getattr(defaults, f.name)) for f in dataclasses.fields(cls)}


def _coerce(name: str, kind: type[Any], value: Any, source: str) -> Any:
    """Turns ``value`` (from TOML, an env string or a flag) into ``kind``."""
    if name == "lan":
        # "on" and "off", and the words any other switch takes for them.
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return "on" if value.lower() in _TRUE else "off"
        if not isinstance(value, str):
            raise ConfigError(
                f"{source}: lan must be one of {', '.join(LAN_CHOICES)}, not {value!r}"
            )
    if kind is tuple:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{source}: {name} must be a list of strings")
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ConfigError(f"{source}: {name} must be true or false, not {value!r}")
    if kind is int:
        if isinstance(value, bool):
            raise ConfigError(f"{source}: {name} must be an integer, not {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.replace("_", ""))
            except ValueError:
                pass
        raise ConfigError(f"{source}: {name} must be an integer, not {value!r}")
    if isinstance(value, str):
        return value
    raise ConfigError(f"{source}: {name} must be a string, not {value!r}")


def _apply(tree: dict[str, Any], updates: Mapping[str, Any], source: str) -> None:
    """Merges ``updates`` (nested like the TOML file) into ``tree``, checking names."""
    top = _field_types(Settings)
    for key, value in updates.items():
        if key in _SECTION_TYPES:
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: [{key}] must be a table")
            kinds = _field_types(_SECTION_TYPES[key])
            for sub, subvalue in value.items():
                if sub not in kinds:
                    raise ConfigError(f"{source}: unknown setting {key}.{sub}")
                tree[key][sub] = _coerce(f"{key}.{sub}", kinds[sub], subvalue, source)
        elif key in top:
            tree[key] = _coerce(key, top[key], value, source)
        else:
            raise ConfigError(f"{source}: unknown setting {key}")


def env_updates(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings given as ``FLESS_*`` variables, nested like the file."""
    names: dict[str, tuple[str, ...]] = {}
    for key in _field_types(Settings):
        if key not in _SECTION_TYPES:
            names[f"FLESS_{key.upper()}"] = (key,)
    for section, cls in _SECTION_TYPES.items():
        for key in _field_types(cls):
            names[f"FLESS_{section.upper()}_{key.upper()}"] = (section, key)
    updates: dict[str, Any] = {}
    for var, value in environ.items():
        path = names.get(var)
        if path is None:
            continue
        if len(path) == 1:
            updates[path[0]] = value
        else:
            updates.setdefault(path[0], {})[path[1]] = value
    return updates


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Builds the settings from every source, in order of precedence.

    Args:
        config_file: a TOML file; ``FLESS_CONFIG`` names one when this is None.
        environ: the environment to read ``FLESS_*`` from (``os.environ``).
        overrides: command-line values, nested like the file; None values are
            flags that were not given.

    Returns:
        The validated settings.

    Raises:
        ConfigError: a file that cannot be read, an unknown name, a bad value.
    """
    environ = os.environ if environ is None else environ
    defaults = Settings()
    tree: dict[str, Any] = {f.name: getattr(defaults, f.name) for f in dataclasses.fields(Settings)}
    for section in _SECTION_TYPES:
        tree[section] = dataclasses.asdict(getattr(defaults, section))

    path = config_file or environ.get("FLESS_CONFIG")
    if path:
        import tomllib  # only with a file: a node's master keeps what it imports

        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        _apply(tree, data, str(path))
    _apply(tree, env_updates(environ), "environment")
    if overrides:
        flags = {
            k: ({sk: sv for sk, sv in v.items() if sv is not None} if isinstance(v, Mapping) else v)
            for k, v in overrides.items()
            if v is not None
        }
        _apply(tree, flags, "command line")

    settings = Settings(
        role=tree["role"],
        lan=tree["lan"],
        data_dir=tree["data_dir"],
        log_level=tree["log_level"],
        drain_timeout_s=tree["drain_timeout_s"],
        **{name: cls(**tree[name]) for name, cls in _SECTION_TYPES.items()},
    )
    _validate(settings)
    return with_listen_hosts(settings)


def serves_lan(settings: Settings) -> bool:
    """Whether the node serves the LAN: ``lan`` "on", or "auto" with role core or worker.

    Roles core and worker exist to make a cluster across machines; role all
    is the one-machine node of a first try, which keeps to loopback.
    """
    if settings.lan == "auto":
        return settings.role != "all"
    return settings.lan == "on"


def with_listen_hosts(settings: Settings) -> Settings:
    """The settings with the empty ``api.host`` and ``cluster.rpc_host`` filled in by ``lan``.

    A host set anywhere (file, environment, flag) is kept as it is.
    """
    host = EVERY_INTERFACE if serves_lan(settings) else LOOPBACK
    return dataclasses.replace(
        settings,
        api=dataclasses.replace(settings.api, host=settings.api.host or host),
        cluster=dataclasses.replace(settings.cluster, rpc_host=settings.cluster.rpc_host or host),
    )


def _validate(settings: Settings) -> None:
    if settings.role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, not {settings.role!r}")
    if settings.lan not in LAN_CHOICES:
        raise ConfigError(f"lan must be one of {', '.join(LAN_CHOICES)}, not {settings.lan!r}")
    if settings.log_level not in LOG_LEVELS:
        raise ConfigError(f"log_level must be one of {', '.join(LOG_LEVELS)}")
    positive = {
        "api.max_upload_bytes": settings.api.max_upload_bytes,
        "api.max_request_bytes": settings.api.max_request_bytes,
        "api.max_body_bytes_in_flight": settings.api.max_body_bytes_in_flight,
        "api.max_header_bytes": settings.api.max_header_bytes,
        "api.max_headers": settings.api.max_headers,
        "api.header_timeout_ms": settings.api.header_timeout_ms,
        "api.max_connections": settings.api.max_connections,
        "api.body_timeout_ms": settings.api.body_timeout_ms,
        "functions.default_memory_mib": settings.functions.default_memory_mib,
        "functions.max_memory_mib": settings.functions.max_memory_mib,
        "functions.default_timeout_ms": settings.functions.default_timeout_ms,
        "functions.max_timeout_ms": settings.functions.max_timeout_ms,
        "functions.max_output_bytes": settings.functions.max_output_bytes,
        "functions.http_timeout_ms": settings.functions.http_timeout_ms,
        "worker.threads": settings.worker.threads,
        "worker.cache_max_bytes": settings.worker.cache_max_bytes,
        "worker.cache_ttl_s": settings.worker.cache_ttl_s,
        "worker.log_entries": settings.worker.log_entries,
        "worker.log_max_bytes": settings.worker.log_max_bytes,
        "worker.compile_timeout_s": settings.worker.compile_timeout_s,
        "worker.compile_memory_mib": settings.worker.compile_memory_mib,
        "worker.loaded_max_mib": settings.worker.loaded_max_mib,
        **{
            f"functions.{f.name}": getattr(settings.functions, f.name)
            for f in dataclasses.fields(FunctionSettings)
            if f.name.startswith("max_module_")
        },
        "api.recent_invocations": settings.api.recent_invocations,
        "cluster.beacon_port": settings.cluster.beacon_port,
        "drain_timeout_s": settings.drain_timeout_s,
    }
    for name, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{name} must be positive, not {value}")
    for name, port in (
        ("api.port", settings.api.port),
        ("cluster.rpc_port", settings.cluster.rpc_port),
        ("cluster.gossip_port", settings.cluster.gossip_port),
        ("worker.metrics_port", settings.worker.metrics_port),
    ):
        if not 0 <= port <= 65535:
            raise ConfigError(f"{name} must be between 0 and 65535, not {port}")
    if bool(settings.api.tls_certfile) != bool(settings.api.tls_keyfile):
        raise ConfigError("api.tls_certfile and api.tls_keyfile go together: set both or neither")
    if settings.api.rate_burst < 1:
        raise ConfigError(f"api.rate_burst must be at least 1, not {settings.api.rate_burst}")
    if settings.api.public_rate_burst < 1:
        raise ConfigError(
            f"api.public_rate_burst must be at least 1, not {settings.api.public_rate_burst}"
        )
    for name, value in (
        ("api.rate_limit_per_s", settings.api.rate_limit_per_s),
        ("api.public_rate_per_s", settings.api.public_rate_per_s),
        ("api.workers", settings.api.workers),
        ("functions.max_retries", settings.functions.max_retries),
        ("worker.memory_mib", settings.worker.memory_mib),
        ("worker.reserved_mib", settings.worker.reserved_mib),
    ):
        if value < 0:
            raise ConfigError(f"{name} must not be negative, not {value}")
    for seed in settings.cluster.seeds:
        host, sep, seed_port = seed.rpartition(":")
        if not sep or not host or not seed_port.isdigit():
            raise ConfigError(f"cluster.seeds: {seed!r} is not HOST:PORT")
    worker = settings.worker
    if worker.name and not WORKER_NAME.fullmatch(worker.name):
        raise ConfigError(
            f"worker.name {worker.name!r}: 1-63 characters from a-z, A-Z, 0-9, '.', '_' and '-',"
            " starting with a letter or digit"
        )
    if len(worker.labels) > MAX_LABELS:
        raise ConfigError(f"worker.labels: at most {MAX_LABELS} labels, not {len(worker.labels)}")
    for label in worker.labels:
        if not LABEL.fullmatch(label):
            raise ConfigError(
                f"worker.labels: {label!r} is not a label: 1-24 characters from a-z, A-Z,"
                " 0-9, '.', '_' and '-', starting with a letter or digit"
            )
    fn = settings.functions
    if fn.default_memory_mib > fn.max_memory_mib:
        raise ConfigError("functions.default_memory_mib exceeds functions.max_memory_mib")
    if fn.default_timeout_ms > fn.max_timeout_ms:
        raise ConfigError("functions.default_timeout_ms exceeds functions.max_timeout_ms")


def settings_as_dict(settings: Settings) -> dict[str, Any]:
    """The settings as plain data (for ``fless-node show-config`` and for tests)."""
    data = dataclasses.asdict(settings)
    for section in _SECTION_TYPES:
        for key, value in data[section].items():
            if isinstance(value, tuple):
                data[section][key] = list(value)
    return data
