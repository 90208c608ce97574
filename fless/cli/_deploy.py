"""Deploying: what to create, update, leave or delete so the cluster has the functions wanted.

``plan`` is pure: the functions wanted (code and the settings that are
managed) and the functions the cluster has, as ``GET /v1/fn/{module}``
lists them, in; a list of ``Step`` out. ``apply`` carries the steps out
with a ``Client``. ``fless fn deploy`` plans one function, ``fless deploy``
a manifest's.

The cluster shows a function's code as its SHA-256 (``hash``), so code is
compared by hash. Events and sinks are compared in the form the cluster
keeps them (defaults filled in, see ``stored_form``) with their secrets
(passwords, http headers) hidden, as the API shows them: a change of a
password or a header alone is not seen, and ``force`` sends every setting.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fless.cli._bindings import Entry, failures
from fless.client import Client, FlessError

# The params the API shows as "(hidden)" (fless.core's SECRET_PARAMS).
SECRET_PARAMS = ("password", "headers")
HIDDEN = "(hidden)"
# What the cluster fills in when a binding leaves it out (fless.events' specs).
_MQTT_PORTS = {False: 1883, True: 8883}

Key = tuple[str, str]


@dataclass(frozen=True)
class Wanted:
    """One function as it should be.

    ``settings`` holds only what is managed, by the API's names: ``memory``,
    ``timeout``, ``http_allow``, ``tag``, ``app``, ``events``, ``sinks``,
    ``public``, ``secrets``; a setting left out is kept as the cluster has it (its default for a new
    function).
    """

    module: str
    name: str
    code: bytes
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        """``(module, name)``."""
        return self.module, self.name

    @property
    def hash(self) -> str:
        """The code's SHA-256, as the cluster shows it."""
        return hashlib.sha256(self.code).hexdigest()


@dataclass(frozen=True)
class Step:
    """One thing to do: ``create``, ``update``, ``unchanged`` or ``delete`` a function.

    ``changes`` says what an update changes (``code``, ``memory 64 -> 32``);
    ``wanted`` is None for a delete.
    """

    action: str
    module: str
    name: str
    changes: tuple[str, ...] = ()
    wanted: Wanted | None = None

    def describe(self) -> str:
        """The step in one line: ``update demo/hello (code, memory 64 -> 32)``."""
        text = f"{self.action:<9}  {self.module}/{self.name}"
        return text + (f" ({', '.join(self.changes)})" if self.changes else "")

    def public(self) -> dict[str, Any]:
        """The step as ``--output json`` shows it."""
        return {
            "action": self.action,
            "module": self.module,
            "name": self.name,
            "changes": list(self.changes),
        }


def stored_form(entry: Entry) -> Entry:
    """A binding as the cluster keeps and shows it: defaults filled in, secrets hidden.

    Args:
        entry: a FunLess entry ``{"type", "params"}`` as the CLI sends it.

    Returns:
        The entry as ``GET /v1/fn/{module}/{name}`` would list it once kept.
    """
    kind = entry.get("type")
    params = dict(entry.get("params") or {})
    if kind == "cron":
        params["timezone"] = params.get("timezone") or "UTC"
        params.setdefault("args", {})
    elif kind == "mqtt":
        tls = params.get("tls", False)
        params["tls"] = tls
        port = params.get("port")
        if isinstance(port, str) and port.strip().isdigit():
            port = int(port.strip())
        params["port"] = port if port is not None else _MQTT_PORTS.get(tls is True, 1883)
        if isinstance(params.get("host"), str):
            params["host"] = params["host"].strip()
    elif kind == "http":
        params.setdefault("headers", {})
    if kind in ("http", "couchdb") and isinstance(params.get("url"), str):
        params["url"] = params["url"].strip()
    shown = {
        key: HIDDEN if key in SECRET_PARAMS and not _is_secret_ref(value) else value
        for key, value in params.items()
        if value is not None
    }
    return {"type": kind, "params": shown}


def _is_secret_ref(value: object) -> bool:
    # {"secret": NAME} names a stored secret: the API shows the name, not a value.
    return isinstance(value, dict) and list(value) == ["secret"]


def _same_bindings(wanted: Iterable[Entry], current: object) -> bool:
    return [stored_form(e) for e in wanted] == (current if isinstance(current, list) else [])


def differences(wanted: Wanted, current: Mapping[str, Any]) -> list[str]:
    """What differs between a wanted function and the cluster's.

    Args:
        wanted: the function wanted.
        current: the cluster's description of it.

    Returns:
        One short phrase per difference, in a fixed order; empty when none.
    """
    found = []
    if wanted.hash != current.get("hash"):
        found.append("code")
    settings = wanted.settings
    for name, unit in (("memory", " MiB"), ("timeout", " ms")):
        if settings.get(name) is not None and settings[name] != current.get(name):
            found.append(f"{name} {current.get(name)} -> {settings[name]}{unit}")
    if "http_allow" in settings and sorted(settings["http_allow"]) != sorted(
        current.get("http_allow") or []
    ):
        found.append("allow")
    for name in ("tag", "app"):
        if name in settings and (settings[name] or None) != current.get(name):
            found.append(f"{name} {current.get(name) or '(none)'} -> {settings[name] or '(none)'}")
    for name in ("events", "sinks"):
        if name in settings and not _same_bindings(settings[name], current.get(name)):
            found.append(name)
    if settings.get("public") is not None and settings["public"] != bool(current.get("public")):
        found.append("public" if settings["public"] else "not public")
    if "secrets" in settings and sorted(settings["secrets"]) != sorted(
        current.get("secrets") or []
    ):
        found.append("secrets")
    return found


def plan(
    wanted: Sequence[Wanted],
    current: Mapping[Key, Mapping[str, Any]],
    prune: Collection[str] = (),
    *,
    force: bool = False,
) -> list[Step]:
    """The steps that make the cluster hold ``wanted``.

    Args:
        wanted: the functions wanted, in order.
        current: the cluster's functions by ``(module, name)``: at least those
            of ``wanted``'s modules and of ``prune``.
        prune: modules whose functions that are not wanted are deleted.
        force: update every function that exists, even one with no difference.

    Returns:
        One step per wanted function, in order, then the deletes by name.
    """
    steps = []
    for function in wanted:
        now = current.get(function.key)
        if now is None:
            steps.append(Step("create", function.module, function.name, wanted=function))
            continue
        changes = differences(function, now) or (["forced"] if force else [])
        action = "update" if changes else "unchanged"
        steps.append(Step(action, function.module, function.name, tuple(changes), function))
    keep = {function.key for function in wanted}
    modules = set(prune)
    steps += [
        Step("delete", module, name)
        for module, name in sorted(current)
        if module in modules and (module, name) not in keep
    ]
    return steps


def _create_kwargs(settings: Mapping[str, Any]) -> dict[str, Any]:
    kwargs = {
        "memory": settings.get("memory"),
        "timeout": settings.get("timeout"),
        "http_allow": list(settings.get("http_allow") or []) or None,
        "events": list(settings.get("events") or []) or None,
        "sinks": list(settings.get("sinks") or []) or None,
        "tag": settings.get("tag") or None,
        "app": settings.get("app") or None,
        "public": settings.get("public") or None,
        "secrets": list(settings.get("secrets") or []) or None,
    }
    return kwargs


def _update_kwargs(
    wanted: Wanted, current: Mapping[str, Any], force: bool
) -> tuple[bytes | None, dict[str, Any]]:
    """The code and settings an update sends: only what differs (all, when forced)."""
    settings = wanted.settings
    code = wanted.code if force or wanted.hash != current.get("hash") else None
    kwargs: dict[str, Any] = {}
    for name in ("memory", "timeout"):
        if settings.get(name) is not None and (force or settings[name] != current.get(name)):
            kwargs[name] = settings[name]
    if "http_allow" in settings:
        kwargs["http_allow"] = list(settings["http_allow"])
    for name in ("tag", "app"):
        if name in settings:
            kwargs[name] = settings[name] or ""  # "" removes it
    if settings.get("public") is not None:
        kwargs["public"] = settings["public"]
    if "secrets" in settings:
        kwargs["secrets"] = list(settings["secrets"])
    for name in ("events", "sinks"):
        if name not in settings:
            continue
        if not force and _same_bindings(settings[name], current.get(name)):
            continue  # re-sent bindings would reconnect for nothing
        if settings[name]:
            kwargs[name] = list(settings[name])
        elif current.get(name):
            kwargs[f"clear_{name}"] = True
    return code, kwargs


@dataclass
class Outcome:
    """What applying steps did: the steps done, and the bindings that failed."""

    done: list[Step] = field(default_factory=list)
    failed_bindings: list[str] = field(default_factory=list)


def apply(
    client: Client,
    steps: Sequence[Step],
    current: Mapping[Key, Mapping[str, Any]],
    *,
    force: bool = False,
    wait_for_workers: bool = True,
    report: Callable[[Step], None] | None = None,
) -> Outcome:
    """Carries out ``steps`` in order, stopping at the first that the cluster refuses.

    Args:
        client: the cluster.
        steps: what ``plan`` returned.
        current: what ``plan`` was given.
        force: send every setting of an update, as ``plan`` was told.
        wait_for_workers: each create or update answers once the workers have the code.
        report: told each step once it is done.

    Returns:
        The steps done, and one line per event or sink the cluster could not
        connect (the function is kept without it: ``failures``).

    Raises:
        FlessError: a step failed; the steps before it are done.
    """
    outcome = Outcome()
    for step in steps:
        try:
            answer = _carry_out(client, step, current, force, wait_for_workers)
        except FlessError as exc:
            # Which step: the server's message names the function only sometimes.
            where = f"{step.action} {step.module}/{step.name}"
            raise FlessError(exc.status, f"{where}: {exc.detail}") from None
        outcome.failed_bindings += [
            f"{step.module}/{step.name}: {line}" for line in failures(answer)
        ]
        outcome.done.append(step)
        if report is not None:
            report(step)
    return outcome


def _carry_out(
    client: Client,
    step: Step,
    current: Mapping[Key, Mapping[str, Any]],
    force: bool,
    wait_for_workers: bool,
) -> dict[str, Any]:
    """Does one step; returns the cluster's answer (``{}`` for a delete or nothing to do)."""
    if step.action == "create" and step.wanted is not None:
        return client.create_function(
            step.module,
            step.name,
            step.wanted.code,
            wait_for_workers=wait_for_workers,
            **_create_kwargs(step.wanted.settings),
        )
    if step.action == "update" and step.wanted is not None:
        code, kwargs = _update_kwargs(step.wanted, current[(step.module, step.name)], force)
        return client.update_function(
            step.module, step.name, code, wait_for_workers=wait_for_workers, **kwargs
        )
    if step.action == "delete":
        client.delete_function(step.module, step.name)
    return {}


def functions_of(client: Client, modules: Iterable[str]) -> tuple[dict[Key, Any], list[str]]:
    """The cluster's functions in ``modules``, and the modules that do not exist.

    Raises:
        FlessError: the cluster could not be asked.
    """
    found: dict[Key, Any] = {}
    missing = []
    for module in modules:
        try:
            listed = client.list_functions(module)
        except FlessError as exc:
            if exc.status != 404:
                raise
            missing.append(module)
            continue
        found.update({(module, str(f.get("name"))): f for f in listed})
    return found, missing
