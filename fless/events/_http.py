"""Results over HTTP: the CouchDB and HTTP sinks, and their checks at a create or update.

Blocking (urllib); the event part runs these on threads of its own. A
result is a JSON document. CouchDB gets it as a new document whose ``_id``
is the invocation's id (unless the result has one), so a result delivered
twice (at least once allows it) is one document: the second POST is a 409,
which counts as delivered. An HTTP sink gets the invocation's id in
``X-Fless-Invocation`` to the same end.
"""

from __future__ import annotations

import base64
import json
import socket
import urllib.error
import urllib.parse
import urllib.request

from fless import __version__

from ._specs import CouchSink, Credential, HttpSink, SecretRef

USER_AGENT = f"fless/{__version__}"
# A sink's answer is read no further than this (its body is not used).
MAX_ANSWER_BYTES = 64 * 1024


class SinkFailed(Exception):
    """A result was not delivered; it stays in the outbox and is tried again later."""


def couch_document(result: bytes, invocation: str) -> bytes:
    """The CouchDB document of a result: the result if it is an object, else ``{"result": ...}``."""
    try:
        value = json.loads(result)
    except ValueError:
        value = result.decode("utf-8", "replace")
    if not isinstance(value, dict):
        value = {"result": value}
    value.setdefault("_id", invocation)
    return json.dumps(value, separators=(",", ":")).encode()


def _text(value: Credential | None) -> str | None:
    """A credential's text: a secret must have been read first (``revealed``)."""
    if isinstance(value, SecretRef):
        raise SinkFailed(f"secret {value.name} was not read before the request")
    return value


def _auth(username: Credential | None, password: Credential | None) -> dict[str, str]:
    if username is None:
        return {}
    user, secret = _text(username), _text(password)
    token = base64.b64encode(f"{user}:{secret or ''}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _send(
    method: str, url: str, body: bytes | None, headers: dict[str, str], timeout_s: float
) -> int:
    """The status of one request (an HTTP error status too; raises only when nothing answered)."""
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("User-Agent", USER_AGENT)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            answer.read(MAX_ANSWER_BYTES)
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        exc.read(MAX_ANSWER_BYTES)
        return int(exc.code)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SinkFailed(f"{url}: {reason}") from None


def deliver_couch(sink: CouchSink, result: bytes, invocation: str, timeout_s: float) -> None:
    """POSTs a result to the database; creates the database if it is missing.

    Raises:
        SinkFailed: not stored (the server is away, or refused it).
    """
    headers = _auth(sink.username, sink.password)
    document = couch_document(result, invocation)
    status = _send("POST", sink.url, document, headers, timeout_s)
    if status == 404:
        created = _send("PUT", sink.url, None, headers, timeout_s)
        if created not in (201, 202, 412):
            raise SinkFailed(f"{sink.url}: no such database, and creating it answered {created}")
        status = _send("POST", sink.url, document, headers, timeout_s)
    if status in (201, 202, 409):
        return
    raise SinkFailed(f"{sink.url} answered {status}")


def deliver_http(
    sink: HttpSink, result: bytes, invocation: str, function: str, timeout_s: float
) -> None:
    """POSTs a result to the URL.

    Raises:
        SinkFailed: no 2xx answer.
    """
    headers = {k: _text(v) or "" for k, v in sink.headers.items()}
    headers |= {"X-Fless-Invocation": invocation, "X-Fless-Function": function}
    status = _send("POST", sink.url, result, headers, timeout_s)
    if not 200 <= status < 300:
        raise SinkFailed(f"{sink.url} answered {status}")


def probe_couch(sink: CouchSink, timeout_s: float) -> str | None:
    """None when the database answers (or could be created) with these credentials, else why not."""
    headers = _auth(sink.username, sink.password)
    try:
        status = _send("GET", sink.url, None, headers, timeout_s)
        if status == 404:
            status = _send("PUT", sink.url, None, headers, timeout_s)
            if status == 412:  # made meanwhile
                status = 200
    except SinkFailed as exc:
        return f"cannot reach CouchDB at {exc}"
    if status in (401, 403):
        return f"CouchDB at {sink.url} refused the credentials ({status})"
    if status not in (200, 201, 202):
        return f"CouchDB at {sink.url} answered {status}"
    return None


def probe_http(sink: HttpSink, timeout_s: float) -> str | None:
    """None when the URL's host takes a connection, else why not (nothing is sent)."""
    parts = urllib.parse.urlsplit(sink.url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout_s):
            return None
    except OSError as exc:
        return f"cannot connect to {parts.hostname}:{port}: {exc}"
