"""``fless.toml``: a project's functions in one file, for ``fless deploy``.

One table per function, under ``functions``, named by the function::

    module = "demo"                 # the default module of every function below

    [functions.hello]
    source = "hello"                # a project directory (built) or a .wasm file
    memory = 32                     # MiB
    timeout = 5000                  # ms
    allow = ["api.example.org"]     # hosts it may reach over HTTP
    events = ["cron:*/5 * * * *"]   # the --event forms, or {type = ..., params = {...}}
    sinks = ["https://hooks.example.org/in"]
    tag = "camera"                  # its APP script tag (docs/APP.md)
    app = "edge"                    # the APP script that places its calls
    public = false                  # its public trigger answers without a key
    secrets = ["TOKEN"]             # secrets its environment holds (fless secret set)

Parsing reads nothing but the file and checks every field before anything
is built or sent, so a bad manifest changes nothing; its error names the
file, the function and the field. docs/MANIFEST.md describes it.
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fless.cli._bindings import Entry, parse_event, parse_sink
from fless.cli._config import toml_string
from fless.cli._project import NAME_PATTERN
from fless.client import FlessError

MANIFEST_NAME = "fless.toml"
# The server's limit on a function's tag (docs/API.md, function metadata).
MAX_TAG = 64
_TOP_KEYS = ("module", "functions")
_FUNCTION_KEYS = (
    "source",
    "name",
    "module",
    "lang",
    "memory",
    "timeout",
    "allow",
    "events",
    "sinks",
    "tag",
    "app",
    "public",
    "secrets",
)


class ManifestError(FlessError):
    """A manifest that cannot be deployed: where (file, function, field) and why.

    Args:
        path: the manifest.
        problem: what is wrong, one sentence.
        function: the function's table, if the problem is in one.
        field: the key, if the problem is in one (``events[2]`` for an item).
    """

    def __init__(
        self, path: Path, problem: str, function: str | None = None, field: str | None = None
    ) -> None:
        where = [str(path)]
        if function is not None:
            where.append(f"function {function}")
        if field is not None:
            where.append(field)
        super().__init__(0, ": ".join([*where, problem]))
        self.function = function
        self.field = field


@dataclass(frozen=True)
class Declared:
    """One function as the manifest declares it.

    ``memory`` and ``timeout`` left out mean the cluster's defaults for a new
    function and no change for one that exists; the lists and the placement
    left out mean none (the manifest says all the function has).
    """

    name: str
    module: str
    source: Path
    lang: str | None = None
    memory: int | None = None
    timeout: int | None = None
    allow: tuple[str, ...] = ()
    events: tuple[Entry, ...] = ()
    sinks: tuple[Entry, ...] = ()
    tag: str | None = None
    app: str | None = None
    public: bool = False
    secrets: tuple[str, ...] = ()

    @property
    def built(self) -> bool:
        """Whether ``source`` is a project to build, not a ``.wasm`` to upload."""
        return self.source.suffix != ".wasm"


@dataclass(frozen=True)
class Manifest:
    """A parsed ``fless.toml``: its path and its functions, in the order written."""

    path: Path
    functions: tuple[Declared, ...]

    @property
    def modules(self) -> list[str]:
        """The modules its functions are in, each once, in order."""
        return list(dict.fromkeys(f.module for f in self.functions))


def is_name(text: str) -> bool:
    """Whether ``text`` is a module or function name: 1 to 160 of ``a-z A-Z 0-9 _``."""
    return NAME_PATTERN.fullmatch(text) is not None


def find_manifest(given: str | None) -> Path:
    """The manifest ``-f`` names, else ``fless.toml`` in the current directory.

    Raises:
        ManifestError: there is no such file.
    """
    path = Path(given) if given else Path(MANIFEST_NAME)
    if path.is_dir():
        path = path / MANIFEST_NAME
    if not path.is_file():
        hint = "" if given else "; write one (docs/MANIFEST.md) or give -f FILE"
        raise ManifestError(path, f"no such file{hint}")
    return path


def load_manifest(path: Path) -> Manifest:
    """Reads and checks a manifest.

    Args:
        path: the ``fless.toml``; sources are relative to its directory.

    Raises:
        ManifestError: it cannot be read, is not TOML, or a field is wrong.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(path, f"cannot read it: {exc}") from exc
    return parse_manifest(text, path)


def parse_manifest(text: str, path: Path) -> Manifest:
    """Checks a manifest's text.

    Args:
        text: the TOML.
        path: where it is from: named in errors, and its directory is where
            relative sources are.

    Raises:
        ManifestError: it is not TOML, or a field is wrong.
    """
    try:
        tree = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(path, f"not valid TOML: {exc}") from None
    _no_unknown_keys(path, tree, _TOP_KEYS, None)
    default_module = _name(path, None, "module", tree.get("module", "_"))
    functions = tree.get("functions")
    if not isinstance(functions, dict) or not functions:
        raise ManifestError(path, "declares no functions: add a [functions.NAME] table")
    declared: list[Declared] = []
    seen: dict[tuple[str, str], str] = {}
    for key, table in functions.items():
        if not isinstance(table, dict):
            raise ManifestError(path, "must be a table ([functions.NAME])", key)
        function = _function(path, key, table, default_module)
        other = seen.setdefault((function.module, function.name), key)
        if other != key:
            raise ManifestError(
                path, f"{function.module}/{function.name} is declared by {other} too", key, "name"
            )
        declared.append(function)
    return Manifest(path, tuple(declared))


def _function(path: Path, key: str, table: dict[str, Any], default_module: str) -> Declared:
    _no_unknown_keys(path, table, _FUNCTION_KEYS, key)
    if "source" not in table:
        raise ManifestError(path, "missing: a project directory or a .wasm file", key, "source")
    return Declared(
        name=_name(path, key, "name", table.get("name", key)),
        module=_name(path, key, "module", table.get("module", default_module)),
        source=_source(path, key, table["source"]),
        lang=_optional_text(path, key, "lang", table.get("lang")),
        memory=_positive(path, key, "memory", table.get("memory")),
        timeout=_positive(path, key, "timeout", table.get("timeout")),
        allow=tuple(_hosts(path, key, table.get("allow", []))),
        events=tuple(_bindings(path, key, "events", table.get("events", []), parse_event)),
        sinks=tuple(_bindings(path, key, "sinks", table.get("sinks", []), parse_sink)),
        tag=_tag(path, key, table.get("tag")),
        app=_app(path, key, table.get("app")),
        public=_flag(path, key, "public", table.get("public", False)),
        secrets=tuple(_secret_names(path, key, table.get("secrets", []))),
    )


def _no_unknown_keys(
    path: Path, table: dict[str, Any], known: tuple[str, ...], function: str | None
) -> None:
    # A misspelt key (memroy) would otherwise deploy the defaults silently.
    for name in table:
        if name not in known:
            raise ManifestError(
                path, f"unknown key {name!r}; known: {', '.join(known)}", function, name
            )


def _name(path: Path, function: str | None, field: str, value: object) -> str:
    if not isinstance(value, str) or not is_name(value):
        raise ManifestError(
            path, f"{value!r} is not a name: 1 to 160 letters, digits and _", function, field
        )
    return value


def _source(path: Path, function: str, value: object) -> Path:
    if not isinstance(value, str) or not value:
        raise ManifestError(path, "must be a path (a string)", function, "source")
    source = (path.parent / value).resolve()
    if source.suffix == ".wasm":
        if not source.is_file():
            raise ManifestError(path, f"{value}: no such .wasm file", function, "source")
    elif not source.is_dir():
        raise ManifestError(
            path, f"{value}: not a directory (a project) or a .wasm file", function, "source"
        )
    return source


def _optional_text(path: Path, function: str, field: str, value: object) -> str | None:
    if value is not None and (not isinstance(value, str) or not value):
        raise ManifestError(path, "must be a non-empty string", function, field)
    return value


def _positive(path: Path, function: str, field: str, value: object) -> int | None:
    unit = "MiB" if field == "memory" else "ms"
    # bool is an int in Python; `memory = true` is a mistake, not 1 MiB.
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ManifestError(
            path, f"must be a positive whole number of {unit}, not {value!r}", function, field
        )
    return value


def _hosts(path: Path, function: str, value: object) -> list[str]:
    if not isinstance(value, list):
        raise ManifestError(
            path, 'must be a list of host names: ["api.example.org"]', function, "allow"
        )
    for i, host in enumerate(value, 1):
        if not isinstance(host, str) or not host or host.strip() != host or "/" in host:
            raise ManifestError(path, f"{host!r} is not a host name", function, f"allow[{i}]")
    return value


def _bindings(
    path: Path,
    function: str,
    field: str,
    value: object,
    parse: Callable[[str], Entry],
) -> list[Entry]:
    """Events or sinks: the ``--event``/``--sink`` forms, or inline FunLess entries."""
    if not isinstance(value, list):
        raise ManifestError(path, "must be a list", function, field)
    entries = []
    for i, item in enumerate(value, 1):
        where = f"{field}[{i}]"
        if isinstance(item, dict):
            if not isinstance(item.get("type"), str) or not isinstance(item.get("params"), dict):
                raise ManifestError(
                    path,
                    "an entry table needs type (a string) and params (a table)",
                    function,
                    where,
                )
            entries.append(item)
            continue
        if not isinstance(item, str):
            raise ManifestError(path, "must be a spec (a string) or a table", function, where)
        try:
            entries.append(parse(item))
        except argparse.ArgumentTypeError as exc:
            raise ManifestError(path, str(exc), function, where) from None
    return entries


def _tag(path: Path, function: str, value: object) -> str | None:
    if value is not None and (not isinstance(value, str) or not 0 < len(value) <= MAX_TAG):
        raise ManifestError(path, f"must be a string of 1 to {MAX_TAG} characters", function, "tag")
    return value


def _app(path: Path, function: str, value: object) -> str | None:
    return None if value is None else _name(path, function, "app", value)


def _flag(path: Path, function: str, field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ManifestError(path, f"must be true or false, not {value!r}", function, field)
    return value


def _secret_names(path: Path, function: str, value: object) -> list[str]:
    if not isinstance(value, list):
        raise ManifestError(path, 'must be a list of secret names: ["TOKEN"]', function, "secrets")
    for i, name in enumerate(value, 1):
        _name(path, function, f"secrets[{i}]", name)
    return value


def starter_manifest(name: str, source: str = ".") -> str:
    """A ``fless.toml`` declaring one function, its settings commented out, for ``fn new``.

    Args:
        name: the function.
        source: its project directory, relative to the manifest.
    """
    return f"""\
# The functions of this project: `fless deploy` creates or updates them
# (docs/MANIFEST.md). Sources are relative to this file.
[functions.{name}]
source = {toml_string(source)}
# module = "_"
# memory = 64                            # MiB
# timeout = 10000                        # ms
# allow = ["api.example.org"]            # hosts it may reach over HTTP
# events = ["cron:*/5 * * * *"]          # the --event forms
# sinks = ["https://hooks.example.org/in"]
# tag = "camera"                         # its APP script tag (docs/APP.md)
# app = "edge"                           # the APP script that places its calls
# public = false                         # true: anyone may call /fn/MODULE/NAME without a key
# secrets = ["TOKEN"]                    # `fless secret set TOKEN`: in its environment
"""
