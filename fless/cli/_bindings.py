"""Events and sinks on the command line: short specs to FunLess entries, and back to one line.

A spec is URL-like text (``mqtt://broker.lan/sensors/+/temp``,
``'cron:0 8 * * *@Europe/Rome'``, ``couchdb+http://u:p@db.lan:5984/readings``)
or a FunLess entry as JSON (``{"type": ..., "params": {...}}``). The parsers
raise ``argparse.ArgumentTypeError``, so a bad spec is a usage error naming
the spec (its password masked) and what is wrong with it. They read no
file but the one an ``mqtts://...?ca=FILE`` names.
docs/EVENTS.md describes the entries.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from fless.cli._args import loads_strict
from fless.events import Refused, check_topic

Entry = dict[str, Any]

EVENT_SYNTAX = """\
  mqtt://[USER[:PASSWORD]@]HOST[:PORT]/TOPIC[?topic_key=KEY]
      run on each message of TOPIC, a filter (+ and # wildcards; write # as
      %23 if the shell eats it); port 1883; mqtts:// for TLS, port 8883,
      and mqtts://...?ca=FILE to trust a private CA (PEM) instead of the system's
  'cron:MIN HOUR DAY MONTH WEEKDAY[@TIMEZONE][|ARGS]'
      run at each tick, in TIMEZONE (IANA, default UTC), with ARGS (a JSON
      object, default {})
  '{"type": ..., "params": {...}}'   a FunLess entry, sent as it is
e.g. --event 'mqtts://alice:s3cret@broker.lan/sensors/+/temp?topic_key=_topic'
     --event 'cron:*/5 * * * *'  --event 'cron:0 8 * * *@Europe/Rome|{"room":"hall"}'"""

SINK_SYNTAX = """\
  couchdb+http[s]://USER:PASSWORD@HOST[:PORT]/DB   store each result in DB
  http[s]://...                  POST each result there (headers: --sink-header)
  mqtt[s]://[USER[:PASSWORD]@]HOST[:PORT]/TOPIC    publish each result to TOPIC
                                   (mqtts://...?ca=FILE: trust a private CA)
  '{"type": ..., "params": {...}}'                 a FunLess entry, sent as it is
e.g. --sink couchdb+http://fless:pw@db.lan:5984/readings
     --sink https://hooks.example.org/in --sink-header 'Authorization: Bearer X'
User names and passwords are percent-decoded (write @ as %40, / as %2F)."""

_MQTT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_PASSWORD = re.compile(r"(://[^/@:]*:)[^/]*@")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _bad(spec: str, problem: str) -> argparse.ArgumentTypeError:
    shown = _PASSWORD.sub(r"\1***@", spec)
    return argparse.ArgumentTypeError(f"{shown!r}: {problem}")


def _json_entry(spec: str) -> Entry:
    try:
        value = loads_strict(spec)
    except ValueError as exc:
        raise _bad(spec, f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise _bad(spec, "a JSON entry must be an object")
    return value


def _server(spec: str, authority: str, default_port: int | None) -> dict[str, Any]:
    """``host``, ``port``, and the percent-decoded ``username``/``password`` of an authority."""
    try:
        parts = urlsplit(f"//{authority}")
        port = parts.port
    except ValueError as exc:
        raise _bad(spec, f"bad host or port: {exc}") from None
    if not parts.hostname:
        raise _bad(spec, "no host")
    if port == 0:
        raise _bad(spec, "port 0 is not a port")
    server: dict[str, Any] = {"host": parts.hostname, "port": port or default_port}
    if parts.username:
        server["username"] = unquote(parts.username)
    if parts.password is not None:
        server["password"] = unquote(parts.password)
    return server


def _mqtt(spec: str, *, event: bool) -> Entry:
    scheme, _, rest = spec.partition("://")
    authority, slash, path = rest.partition("/")
    path, question, query = path.partition("?")
    topic = unquote(path)
    if not slash or not topic:
        raise _bad(spec, f"no topic: expected {scheme}://HOST[:PORT]/TOPIC")
    params = _server(spec, authority, _MQTT_PORTS[scheme])
    params["topic"] = topic
    if scheme == "mqtts":
        params["tls"] = True
    try:
        # The core's own rule, so a spec it would refuse is a usage error here.
        check_topic(topic, wildcards=event)
    except Refused as exc:
        raise _bad(spec, str(exc).removeprefix("params.")) from None
    if question:
        try:
            options = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            raise _bad(spec, f"bad query {query!r}") from None
        for key, value in options:
            if key == "ca" and scheme == "mqtts":
                params["ca"] = _read_ca(spec, value)
                continue
            if not event or key != "topic_key":
                known = "?topic_key=KEY" if event else "no option"
                raise _bad(spec, f"unknown option {key!r} ({known}; mqtts:// takes ?ca=FILE)")
            if not value:
                raise _bad(spec, "topic_key needs a value")
            params["topic_key"] = value
    return {"type": "mqtt", "params": params}


def _read_ca(spec: str, path: str) -> str:
    """The PEM text of ``?ca=FILE``: the private CA a TLS broker's certificate must chain to."""
    if not path:
        raise _bad(spec, "ca needs a file: ?ca=/path/to/ca.pem")
    try:
        return Path(path).expanduser().read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(spec, f"cannot read the CA file {path!r}: {exc}") from None


def _cron(spec: str) -> Entry:
    text, bar, raw_args = spec.removeprefix("cron:").partition("|")
    schedule, at, timezone = text.partition("@")
    fields = schedule.split()
    if len(fields) != 5:
        raise _bad(spec, f"expected five fields (minute hour day month weekday), got {len(fields)}")
    params: dict[str, Any] = {"schedule": " ".join(fields)}
    if at:
        timezone = timezone.strip()
        if not timezone or " " in timezone:
            raise _bad(spec, "expected an IANA time zone after @, such as Europe/Rome")
        params["timezone"] = timezone
    if bar:
        try:
            args = loads_strict(raw_args)
        except ValueError as exc:
            raise _bad(spec, f"the args after | are not valid JSON: {exc}") from None
        if not isinstance(args, dict):
            raise _bad(spec, "the args after | must be a JSON object")
        params["args"] = args
    return {"type": "cron", "params": params}


def parse_event(spec: str) -> Entry:
    """Parses an ``--event`` spec (see ``EVENT_SYNTAX``).

    Args:
        spec: ``mqtt[s]://...``, ``cron:...`` or a JSON entry.

    Returns:
        The FunLess entry ``{"type": ..., "params": {...}}``.

    Raises:
        argparse.ArgumentTypeError: the spec is not one of those, or is malformed.
    """
    text = spec.strip()
    if text.startswith("{"):
        return _json_entry(text)
    if text.startswith(("mqtt://", "mqtts://")):
        return _mqtt(text, event=True)
    if text.startswith("cron:"):
        return _cron(text)
    raise _bad(spec, "expected mqtt://, mqtts://, cron: or a JSON entry")


def _couchdb(spec: str) -> Entry:
    url = spec.removeprefix("couchdb+")
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        raise _bad(spec, f"bad URL: {exc}") from None
    if not parts.hostname:
        raise _bad(spec, "no host")
    if parts.path.strip("/") == "":
        raise _bad(spec, "no database: expected .../DB after the host")
    if parts.query or parts.fragment:
        raise _bad(spec, "no query or fragment allowed")
    if parts.username is None or parts.password is None:
        raise _bad(spec, "CouchDB needs USER:PASSWORD@ before the host")
    netloc = parts.netloc.rpartition("@")[2]
    return {
        "type": "couchdb",
        "params": {
            "url": f"{parts.scheme}://{netloc}{parts.path}",
            "username": unquote(parts.username),
            "password": unquote(parts.password),
        },
    }


def _http(spec: str) -> Entry:
    try:
        parts = urlsplit(spec)
        _ = parts.port
    except ValueError as exc:
        raise _bad(spec, f"bad URL: {exc}") from None
    if not parts.hostname:
        raise _bad(spec, "no host")
    return {"type": "http", "params": {"url": spec}}


def parse_sink(spec: str) -> Entry:
    """Parses a ``--sink`` spec (see ``SINK_SYNTAX``).

    Args:
        spec: ``couchdb+http[s]://...``, ``http[s]://...``, ``mqtt[s]://...`` or a JSON entry.

    Returns:
        The FunLess entry ``{"type": ..., "params": {...}}``.

    Raises:
        argparse.ArgumentTypeError: the spec is not one of those, or is malformed.
    """
    text = spec.strip()
    if text.startswith("{"):
        return _json_entry(text)
    if text.startswith(("couchdb+http://", "couchdb+https://")):
        return _couchdb(text)
    if text.startswith(("http://", "https://")):
        return _http(text)
    if text.startswith(("mqtt://", "mqtts://")):
        return _mqtt(text, event=False)
    raise _bad(spec, "expected couchdb+http[s]://, http[s]://, mqtt[s]:// or a JSON entry")


def parse_header(text: str) -> tuple[str, str]:
    """Parses a ``--sink-header 'Name: value'``.

    Args:
        text: a header name, a colon and its value.

    Returns:
        ``(name, value)``, the value without surrounding spaces.

    Raises:
        argparse.ArgumentTypeError: there is no colon or the name is not a header name.
    """
    name, colon, value = text.partition(":")
    if not colon or not _HEADER_NAME.fullmatch(name):
        raise argparse.ArgumentTypeError(f"{text!r}: expected 'Name: value'")
    return name, value.strip()


def add_headers(sinks: list[Entry], headers: list[tuple[str, str]]) -> None:
    """Gives ``headers`` to each http sink of ``sinks`` that has none of its own.

    Args:
        sinks: the entries, changed in place.
        headers: ``(name, value)`` pairs; a later one of the same name wins.

    Raises:
        argparse.ArgumentTypeError: there are headers but no http sink to take them.
    """
    if not headers:
        return
    targets = [
        sink
        for sink in sinks
        if sink.get("type") == "http"
        and isinstance(sink.get("params"), dict)
        and "headers" not in sink["params"]
    ]
    if not targets:
        raise argparse.ArgumentTypeError("--sink-header needs an http(s) --sink to go with")
    for sink in targets:
        sink["params"]["headers"] = dict(headers)


def failures(answer: dict[str, Any]) -> list[str]:
    """The entries of a create or update answer that failed, one line each.

    Args:
        answer: the function's description with ``events`` and ``sinks`` statuses.

    Returns:
        ``["event 2: <message>", "sink 1: <message>"]``, numbered from 1 in the order sent.
    """
    lines: list[str] = []
    for kind in ("event", "sink"):
        statuses = answer.get(f"{kind}s")
        for number, status in enumerate(statuses if isinstance(statuses, list) else [], 1):
            # An update that sends no events answers the ones kept, not statuses.
            if isinstance(status, dict) and status.get("status", "success") != "success":
                lines.append(f"{kind} {number}: {status.get('message') or 'failed'}")
    return lines


def describe(entry: Any) -> str:
    """One line for a binding, as ``fless fn get`` shows it: its type, then its params.

    Args:
        entry: ``{"type": ..., "params": {...}}`` as ``GET /v1/fn/{module}/{name}`` lists it.

    Returns:
        For example ``mqtt broker.lan:1883 sensors/+/temp`` or
        ``cron 0 8 * * * Europe/Rome args={"room": "hall"}``.
    """
    if not isinstance(entry, dict) or not isinstance(entry.get("params"), dict):
        return json.dumps(entry)
    kind, params = str(entry.get("type")), dict(entry["params"])
    words = [kind]
    if "host" in params:
        words.append(f"{params.pop('host')}:{params.pop('port', '')}")
    for main in ("url", "topic", "schedule", "timezone"):
        if main in params:
            words.append(str(params.pop(main)))
    params.pop("password", None)  # shown as (hidden): nothing to learn from it
    if isinstance(params.get("ca"), str):
        params["ca"] = f"({params['ca'].count('BEGIN CERTIFICATE')} PEM certificates)"
    for key, value in params.items():
        shown = value if isinstance(value, str) else json.dumps(value)
        words.append(f"{key}={shown}")
    return " ".join(words)
