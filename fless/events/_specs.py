"""What a binding says: FunLess's ``{"type": ..., "params": {...}}`` entries, checked and typed.

Pure: no I/O. ``parse_event`` and ``parse_sink`` take one entry as the client
sent it and return a typed binding, or raise ``Refused`` with the message
FunLess's answer carries for that entry. ``stored`` is the normalized entry
the function's record keeps, and ``load`` turns it back into the typed form.
"""

from __future__ import annotations

import re
import ssl
import urllib.parse
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

from ._topics import Refused, check_topic

MQTT_PORT = 1883
MQTT_TLS_PORT = 8883
# A binding's strings are addresses and names, not documents.
MAX_PARAM_CHARS = 2048
# A CA bundle in PEM: a few certificates.
MAX_CA_CHARS = 32 * 1024
MAX_HEADERS = 32
# A header name is an RFC 9110 token; a value has no control characters.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]{0,4096}")
# A secret's name, as every name in fless.
_SECRET_NAME = re.compile(r"[_a-zA-Z0-9]{1,160}")
# A host is a name or an address: no user part, path or spaces.
_HOST = re.compile(r"[A-Za-z0-9._\-:\[\]%]{1,253}")


@dataclass(frozen=True)
class SecretRef:
    """A param given as ``{"secret": NAME}``: the function's owner's secret, read at each use.

    Only the name is kept with the function; the value is read from the
    store when the binding connects or delivers, so a changed secret counts
    from the next connection, and no record, queue or log holds it.
    """

    name: str


# A credential as a binding keeps it: text, or the name of a secret.
Credential = str | SecretRef


@dataclass(frozen=True)
class Broker:
    """Where an MQTT binding connects."""

    host: str
    port: int
    username: Credential | None = None
    password: Credential | None = None
    tls: bool = False
    # PEM: the certificates of the CAs the broker's certificate must chain to
    # (a private CA), instead of the system's.
    ca: str | None = None


@dataclass(frozen=True)
class MqttEvent:
    """Each message on ``topic`` (a filter: ``+`` and ``#`` allowed) invokes the function.

    The payload, a JSON object, is the invocation's args. With ``topic_key``
    set, the topic the message came on is added to them under that key (off
    by default: FunLess's args are the payload as it is).
    """

    broker: Broker
    topic: str
    topic_key: str | None = None
    type: str = field(default="mqtt", init=False)


@dataclass(frozen=True)
class CronEvent:
    """The function is invoked with ``args`` at each time ``schedule`` names, in ``timezone``."""

    schedule: str
    timezone: str = "UTC"
    args: Mapping[str, Any] = field(default_factory=dict)
    type: str = field(default="cron", init=False)


@dataclass(frozen=True)
class CouchSink:
    """Each result is POSTed to the database at ``url`` as a JSON document."""

    url: str
    username: Credential | None = None
    password: Credential | None = None
    type: str = field(default="couchdb", init=False)


@dataclass(frozen=True)
class HttpSink:
    """Each result is POSTed to ``url`` as JSON, with ``headers``."""

    url: str
    headers: Mapping[str, Credential] = field(default_factory=dict)
    type: str = field(default="http", init=False)


@dataclass(frozen=True)
class MqttSink:
    """Each result is published to ``topic`` (no wildcards), at QoS 1."""

    broker: Broker
    topic: str
    type: str = field(default="mqtt", init=False)


Event = MqttEvent | CronEvent
Sink = CouchSink | HttpSink | MqttSink
EVENT_TYPES = ("mqtt", "cron")
SINK_TYPES = ("couchdb", "http", "mqtt")


def parse_event(entry: object) -> Event:
    """The event ``entry`` names.

    Raises:
        Refused: no ``type`` or ``params``, an unknown type, or a bad param.
    """
    kind, params = _entry(entry, EVENT_TYPES, "event")
    if kind == "mqtt":
        topic = _text(params, "topic")
        check_topic(topic, wildcards=True)
        topic_key = _optional_text(params, "topic_key")
        return MqttEvent(_broker(params), topic, topic_key)
    schedule = _text(params, "schedule")
    from croniter import croniter  # with dateutil, at the first cron binding (see _cron)

    if len(schedule.split()) != 5 or not croniter.is_valid(schedule):
        raise Refused(
            f"params.schedule {schedule!r} is not a cron expression of five fields "
            "(minute hour day month weekday)"
        )
    timezone = _optional_text(params, "timezone") or "UTC"
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise Refused(f"params.timezone {timezone!r} is not a known time zone") from None
    args = params.get("args", {})
    if not isinstance(args, dict):
        raise Refused("params.args must be a JSON object")
    return CronEvent(schedule, timezone, args)


def parse_sink(entry: object) -> Sink:
    """The sink ``entry`` names.

    Raises:
        Refused: no ``type`` or ``params``, an unknown type, or a bad param.
    """
    kind, params = _entry(entry, SINK_TYPES, "sink")
    if kind == "couchdb":
        return CouchSink(
            _url(params), _credential(params, "username"), _credential(params, "password")
        )
    if kind == "http":
        return HttpSink(_url(params), _headers(params))
    topic = _text(params, "topic")
    check_topic(topic, wildcards=False)
    return MqttSink(_broker(params), topic)


def stored(binding: Event | Sink) -> dict[str, Any]:
    """The binding as the function's record keeps it: FunLess's shape, normalized.

    A secret stays a reference (``{"secret": NAME}``), never its value.
    """
    params = {f.name: _plain(getattr(binding, f.name)) for f in fields(binding) if f.name != "type"}
    broker = params.pop("broker", None)
    if broker is not None:
        params = {**broker, **params}
    return {"type": binding.type, "params": {k: v for k, v in params.items() if v is not None}}


def _plain(value: Any) -> Any:
    """``value`` as JSON: a secret as its reference, a broker as its params."""
    if isinstance(value, SecretRef):
        return {"secret": value.name}
    if isinstance(value, Broker):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


B = TypeVar("B", bound=Broker | CouchSink | HttpSink)


def names_secrets(binding: Broker | CouchSink | HttpSink) -> bool:
    """Whether a broker or sink names a secret in its credentials or headers."""
    if isinstance(binding, HttpSink):
        return any(isinstance(v, SecretRef) for v in binding.headers.values())
    return isinstance(binding.username, SecretRef) or isinstance(binding.password, SecretRef)


def revealed(binding: B, reveal: Callable[[str], str]) -> B:
    """``binding`` with each secret it names replaced by its value (``reveal(NAME)``).

    For a connection or delivery only: the result is never stored or logged.

    Raises:
        whatever ``reveal`` raises for a secret that is not there.
    """
    changes: dict[str, Any]
    if isinstance(binding, HttpSink):
        changes = {
            "headers": {
                k: reveal(v.name) if isinstance(v, SecretRef) else v
                for k, v in binding.headers.items()
            }
        }
    else:
        changes = {
            key: reveal(value.name) if isinstance(value, SecretRef) else value
            for key, value in (("username", binding.username), ("password", binding.password))
        }
    return replace(binding, **changes)


def anonymous(binding: B) -> B:
    """``binding`` without the credentials or headers that name secrets (to probe its host)."""
    if not names_secrets(binding):
        return binding
    changes: dict[str, Any] = {"username": None, "password": None}
    if isinstance(binding, HttpSink):
        changes = {
            "headers": {k: v for k, v in binding.headers.items() if not isinstance(v, SecretRef)}
        }
    return replace(binding, **changes)


def _entry(entry: object, types: tuple[str, ...], what: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(entry, dict):
        raise Refused(f"an {what} must be an object with 'type' and 'params'")
    kind, params = entry.get("type"), entry.get("params")
    if kind is None or params is None:
        missing = "type" if kind is None else "params"
        raise Refused(f"the {what} has no {missing!r}")
    if not isinstance(kind, str) or kind not in types:
        known = ", ".join(types)
        raise Refused(f"unknown {what} type {str(kind)[:40]!r} (fless knows {known})")
    if not isinstance(params, dict):
        raise Refused("'params' must be an object")
    return kind, params


def _text(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None:
        raise Refused(f"params.{name} is missing")
    if not isinstance(value, str) or not value.strip():
        raise Refused(f"params.{name} must be a non-empty string")
    if len(value) > MAX_PARAM_CHARS:
        raise Refused(f"params.{name} is longer than {MAX_PARAM_CHARS} characters")
    return value


def _optional_text(params: Mapping[str, Any], name: str) -> str | None:
    return None if params.get(name) is None else _text(params, name)


def _secret_ref(value: object, where: str) -> SecretRef | None:
    """``{"secret": NAME}`` as a reference; None for any other value.

    Raises:
        Refused: an object that is not a good reference.
    """
    if not isinstance(value, dict):
        return None
    name = value.get("secret")
    if len(value) != 1 or not isinstance(name, str) or not _SECRET_NAME.fullmatch(name):
        raise Refused(f'{where} is text or {{"secret": NAME}} (a secret set with fless secret set)')
    return SecretRef(name)


def _credential(params: Mapping[str, Any], name: str) -> Credential | None:
    """A username or password: text, or ``{"secret": NAME}``."""
    ref = _secret_ref(params.get(name), f"params.{name}")
    return ref if ref is not None else _optional_text(params, name)


def _broker(params: Mapping[str, Any]) -> Broker:
    host = _text(params, "host").strip()
    if not _HOST.fullmatch(host):
        raise Refused(f"params.host {host[:80]!r} is not a host name or address")
    tls = params.get("tls", False)
    if not isinstance(tls, bool):
        raise Refused("params.tls must be true or false")
    return Broker(
        host,
        _port(params.get("port"), MQTT_TLS_PORT if tls else MQTT_PORT),
        _credential(params, "username"),
        _credential(params, "password"),
        tls,
        _ca(params, tls),
    )


def _ca(params: Mapping[str, Any], tls: bool) -> str | None:
    """``params.ca``: PEM certificates a TLS connection trusts instead of the system's."""
    ca = params.get("ca")
    if ca is None:
        return None
    if not tls:
        raise Refused("params.ca needs params.tls true")
    if not isinstance(ca, str) or len(ca) > MAX_CA_CHARS or "-----BEGIN CERTIFICATE-----" not in ca:
        raise Refused(
            f"params.ca must be PEM text (-----BEGIN CERTIFICATE-----...), "
            f"at most {MAX_CA_CHARS} characters"
        )
    try:
        ssl.create_default_context(cadata=ca)
    except (ssl.SSLError, ValueError) as exc:
        raise Refused(f"params.ca holds no certificate Python can load: {exc}") from None
    return ca


def tls_context(broker: Broker) -> ssl.SSLContext:
    """The TLS context of a connection to ``broker``: its own ``ca``, else the system's CAs."""
    return ssl.create_default_context(cadata=broker.ca)


def _port(value: object, default: int) -> int:
    """A port as FunLess takes it: a number or a string of digits."""
    if value is None:
        return default
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip()[:6])
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise Refused("params.port must be a port number from 1 to 65535")
    return value


def _url(params: Mapping[str, Any]) -> str:
    url = _text(params, "url").strip()
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused(f"params.url {url[:80]!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(f"params.url {url[:80]!r} must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise Refused("params.url must not hold credentials; use params.username and password")
    if port == 0 or any(c in url for c in "\r\n\t "):
        raise Refused(f"params.url {url[:80]!r} is not a URL")
    return url


def _headers(params: Mapping[str, Any]) -> dict[str, Credential]:
    headers = params.get("headers", {})
    if not isinstance(headers, dict) or len(headers) > MAX_HEADERS:
        raise Refused(f"params.headers must be an object of at most {MAX_HEADERS} headers")
    refs: dict[str, Credential] = {}
    for name, value in headers.items():
        ref = _secret_ref(value, f"params.headers: the value of {name[:40]!r}")
        if ref is not None and _TOKEN.fullmatch(name):
            refs[name] = ref
            value = ""
        if not _TOKEN.fullmatch(name) or not isinstance(value, str):
            raise Refused(f"params.headers: {name[:40]!r} is not a header name with a string")
        if not _HEADER_VALUE.fullmatch(value):
            raise Refused(f"params.headers: the value of {name!r} holds control characters")
        if name.lower() in ("host", "content-length", "transfer-encoding", "connection"):
            raise Refused(f"params.headers: {name!r} is set by fless")
    return {**headers, **refs}
