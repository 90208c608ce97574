"""A client for the fless REST API (docs/API.md), on the standard library alone.

``Client`` keeps one keep-alive HTTP(S) connection open and maps each route to a
method that returns the ``data`` of the answer. Every failure, from a refused
connection to a 404, is a ``FlessError`` with a one-line message::

    client = Client.from_config()
    client.create_function("_", "hello", Path("hello.wasm").read_bytes())
    client.invoke("_", "hello", {"name": "world"})

The settings the ``fless`` CLI stores (``cfg set``) are read here too, so a
script and the CLI find the same server with the same key.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import tomllib
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

from fless import __version__

# Told (bytes sent, bytes in all) as an upload goes.
Progress = Callable[[int, int], None]

DEFAULT_URL = "http://127.0.0.1:4000"
# Long enough for a function run to its largest allowed timeout (300 s).
DEFAULT_TIMEOUT = 330.0
DEFAULT_CONNECT_TIMEOUT = 10.0

# Errors that mean a kept-alive connection was closed by the server while idle:
# the request never reached it, so sending it again on a new connection is safe.
_STALE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class FlessError(Exception):
    """Talking to fless failed: the server answered with an error, or no request was made.

    Args:
        status: the HTTP status, or 0 when there was no HTTP answer (the server
            is unreachable; the URL, the configuration or the input is wrong).
        detail: what went wrong, one sentence (the server's ``detail`` when it sent one).
    """

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = " ".join(detail.split())
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.status}: {self.detail}" if self.status else self.detail


# -- settings -------------------------------------------------------------------------


def config_path() -> Path:
    """Where the CLI keeps its settings.

    Returns:
        ``$XDG_CONFIG_HOME/fless/config.toml``, else ``~/.config/fless/config.toml``.
    """
    base = os.environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / "fless" / "config.toml"


def read_config(path: Path | None = None) -> dict[str, str]:
    """Reads the CLI's settings file.

    Args:
        path: the file; ``config_path()`` by default.

    Returns:
        The settings it holds (``url``, ``key``), or ``{}`` when there is no file; a
        file written before ``url`` was the name has ``host``, read as ``url``.

    Raises:
        FlessError: the file cannot be read or is not a table of strings.
    """
    path = path or config_path()
    try:
        with path.open("rb") as file:
            tree = tomllib.load(file)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise FlessError(0, f"cannot read config file {path}: {exc}") from exc
    for name, value in tree.items():
        if not isinstance(value, str):
            raise FlessError(0, f"config file {path}: {name} must be a string")
    settings = dict(tree)
    old = settings.pop("host", None)
    if old is not None:
        settings.setdefault("url", old)
    return settings


def resolve_settings(url: str | None = None, key: str | None = None) -> tuple[str, str | None]:
    """Picks the server and key: argument > FLESS_URL/FLESS_KEY > config file > default.

    Args:
        url: the URL given explicitly (a CLI flag), if any.
        key: the key given explicitly, if any.

    Returns:
        ``(url, key)``; the key is None when none is set anywhere.
    """
    stored: dict[str, str] | None = None

    def pick(given: str | None, env: str, name: str) -> str | None:
        nonlocal stored
        if given:
            return given
        if os.environ.get(env):
            return os.environ[env]
        if stored is None:
            stored = read_config()
        return stored.get(name) or None

    return pick(url, "FLESS_URL", "url") or DEFAULT_URL, pick(key, "FLESS_KEY", "key")


def tls_context(cacert: str | None = None) -> ssl.SSLContext | None:
    """The TLS settings for a server whose certificate a private CA signed.

    Args:
        cacert: a PEM file of CA certificates to trust; ``FLESS_CACERT`` when
            None; neither: None (the system's CAs).

    Returns:
        A context trusting only that file (host names still checked), or None.

    Raises:
        FlessError: the file cannot be read as certificates.
    """
    path = cacert or os.environ.get("FLESS_CACERT") or None
    if path is None:
        return None
    try:
        return ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise FlessError(0, f"cannot read CA certificates from {path}: {exc}") from exc


def normalize_url(url: str) -> str:
    """Checks a server URL and puts it in canonical form.

    Args:
        url: ``http[s]://HOST[:PORT][/PREFIX]``; a bare ``HOST[:PORT]`` means http.

    Returns:
        The URL with a scheme and without a trailing slash.

    Raises:
        FlessError: it is not an http or https URL with a host.
    """
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise FlessError(0, f"invalid fless URL {url!r}: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FlessError(0, f"invalid fless URL {url!r}: expected http[s]://HOST[:PORT]")
    if parts.query or parts.fragment:
        raise FlessError(0, f"invalid fless URL {url!r}: no query or fragment allowed")
    return text.rstrip("/")


# -- wire format ----------------------------------------------------------------------


#: One part of a form: field name, file name (None for a text field) and content.
FormPart = tuple[str, str | None, bytes]


def encode_multipart(
    fields: dict[str, str], files: dict[str, tuple[str, bytes]]
) -> tuple[str, bytes]:
    """Encodes a ``multipart/form-data`` body (RFC 7578): the text fields, then the files.

    Args:
        fields: text fields, name to value.
        files: file fields, name to ``(filename, content)``; sent as octet streams.

    Returns:
        ``(content_type, body)``.
    """
    parts: list[FormPart] = [(name, None, value.encode()) for name, value in fields.items()]
    parts += [(name, filename, content) for name, (filename, content) in files.items()]
    return encode_form(parts)


def encode_form(
    parts: Sequence[FormPart], boundary: str | None = None, *, errors: str = "strict"
) -> tuple[str, bytes]:
    """Encodes a ``multipart/form-data`` body (RFC 7578) of ``parts``, in their order.

    Args:
        parts: ``(name, filename, content)``; a part with a file name is sent
            as an octet stream.
        boundary: the boundary to use as it is; by default a random one that
            occurs in no part.
        errors: how names are encoded to UTF-8 (``str.encode``); tests send a
            lone surrogate with ``"surrogatepass"`` to make bad UTF-8.

    Returns:
        ``(content_type, body)``.
    """
    heads: list[tuple[bytes, bytes]] = []
    for name, filename, content in parts:
        head = f'Content-Disposition: form-data; name="{name}"'
        if filename is not None:
            head += f'; filename="{filename}"\r\nContent-Type: application/octet-stream'
        heads.append(((head + "\r\n").encode("utf-8", errors), content))
    if boundary is None:
        boundary = uuid.uuid4().hex
        # A random 128-bit boundary practically never occurs in the content; make sure.
        while any(boundary.encode() in content for _, content in heads):
            boundary = uuid.uuid4().hex
    delimiter = b"--" + boundary.encode("utf-8", errors)
    body = b"".join(
        delimiter + b"\r\n" + head + b"\r\n" + content + b"\r\n" for head, content in heads
    )
    return f"multipart/form-data; boundary={boundary}", body + delimiter + b"--\r\n"


def _function_form(
    *,
    name: str | None,
    code: bytes | None,
    memory: int | None,
    timeout: int | None,
    http_allow: list[str] | None,
    events: list[dict[str, Any]] | None = None,
    sinks: list[dict[str, Any]] | None = None,
    clear_events: bool = False,
    clear_sinks: bool = False,
    tag: str | None = None,
    app: str | None = None,
    public: bool | None = None,
    secrets: list[str] | None = None,
) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    fields: dict[str, str] = {}
    if name is not None:
        fields["name"] = name
    for kind, entries, clear in (("events", events, clear_events), ("sinks", sinks, clear_sinks)):
        if clear and entries:
            raise ValueError(f"give {kind} or clear_{kind}, not both")
        # null removes every binding of the kind; [] keeps them (FunLess's meaning).
        if clear or entries is not None:
            fields[kind] = json.dumps(None if clear else list(entries or []))
    metadata: dict[str, Any] = {}
    if memory is not None:
        metadata["memory"] = memory
    if timeout is not None:
        metadata["timeout"] = timeout
    if http_allow is not None:
        metadata["http_allow"] = list(http_allow)
    # "" removes a tag or an APP script; None keeps it.
    if tag is not None:
        metadata["tag"] = tag
    if app is not None:
        metadata["app"] = app
    if public is not None:
        metadata["public"] = public
    if secrets is not None:
        metadata["secrets"] = list(secrets)
    if metadata:
        fields["metadata"] = json.dumps(metadata)
    files = {"code": ("code.wasm", code)} if code is not None else {}
    return fields, files


def _error_detail(status: int, reason: str, body: bytes) -> str:
    """The server's ``errors.detail``, else the body's first line, else the reason."""
    try:
        detail = json.loads(body)["errors"]["detail"]
        if isinstance(detail, str) and detail:
            return detail
    except (ValueError, TypeError, KeyError):
        pass
    text = body.decode("utf-8", "replace").strip()
    if text:
        return text.splitlines()[0][:200]
    return reason or http.client.responses.get(status, "error")


def _segment(name: str) -> str:
    return quote(name, safe="")


# -- the client -----------------------------------------------------------------------


class Client:
    """A connection to one fless server, authenticated with one key.

    Not thread-safe: give each thread its own client. Usable as a context
    manager, which closes the connection on exit.

    Args:
        url: the server, ``http[s]://HOST[:PORT]`` (a bare ``HOST:PORT`` means http).
        key: the API key sent as ``Authorization: Bearer``; None sends none.
        timeout: seconds to wait for an answer (a function may run for minutes).
        connect_timeout: seconds to wait for the connection to open.
        ssl_context: for https, the TLS settings; the system's defaults by default.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.url = normalize_url(url)
        self.key = key
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        parts = urlsplit(self.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._ssl_context = ssl_context
        self._conn: http.client.HTTPConnection | None = None

    @classmethod
    def from_config(
        cls, *, url: str | None = None, key: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> Client:
        """A client for the server the CLI is configured for.

        Args:
            url: overrides every other source of the URL.
            key: overrides every other source of the key.
            timeout: as for ``Client``.

        Returns:
            A client using, for each of URL and key, the argument, else
            ``FLESS_URL``/``FLESS_KEY``, else the config file, else the default.
        """
        found_url, found_key = resolve_settings(url, key)
        return cls(found_url, found_key, timeout, ssl_context=tls_context())

    def close(self) -> None:
        """Closes the connection; the next request opens a new one."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    # -- modules

    def list_modules(self) -> list[dict[str, Any]]:
        """The modules.

        Returns:
            ``[{"name": "_"}, ...]``.
        """
        return _as_list(self._call("GET", "/v1/fn"))

    def get_module(self, module: str) -> dict[str, Any]:
        """One module and its functions.

        Args:
            module: the module's name.

        Returns:
            ``{"name": module, "functions": [{"name": ...}, ...]}``.
        """
        return _as_dict(self._call("GET", f"/v1/fn/{_segment(module)}"))

    def create_module(self, name: str) -> dict[str, Any]:
        """Creates a module.

        Args:
            name: the new module's name.

        Returns:
            ``{"name": name}``.
        """
        return _as_dict(self._call("POST", "/v1/fn", {"module": {"name": name}}))

    def rename_module(self, module: str, new_name: str) -> dict[str, Any]:
        """Renames a module (not ``_``).

        Args:
            module: the module's name.
            new_name: its new name.

        Returns:
            ``{"name": new_name}``.
        """
        body = {"module": {"name": new_name}}
        return _as_dict(self._call("PUT", f"/v1/fn/{_segment(module)}", body))

    def delete_module(self, module: str) -> None:
        """Deletes a module (not ``_``) and its functions.

        Args:
            module: the module's name.
        """
        self._call("DELETE", f"/v1/fn/{_segment(module)}")

    # -- functions

    def list_functions(self, module: str = "_") -> list[dict[str, Any]]:
        """The functions of a module.

        Args:
            module: the module's name.

        Returns:
            ``[{"name": ...}, ...]``.
        """
        return _as_list(self.get_module(module).get("functions", []))

    def create_function(
        self,
        module: str,
        name: str,
        code: bytes,
        *,
        memory: int | None = None,
        timeout: int | None = None,
        http_allow: list[str] | None = None,
        events: list[dict[str, Any]] | None = None,
        sinks: list[dict[str, Any]] | None = None,
        wait_for_workers: bool = True,
        progress: Progress | None = None,
        tag: str | None = None,
        app: str | None = None,
        public: bool | None = None,
        secrets: list[str] | None = None,
    ) -> dict[str, Any]:
        """Uploads a new function.

        Args:
            module: the module it goes in.
            name: its name.
            code: the WebAssembly module.
            memory: its memory cap in MiB; the server's default when None.
            timeout: its time limit in ms; the server's default when None.
            http_allow: hosts it may reach besides the cluster's list.
            events: what runs it, FunLess entries ``{"type", "params"}`` (docs/EVENTS.md).
            sinks: where its results go, FunLess entries.
            wait_for_workers: answer only once the workers have the code.
            progress: called with (bytes sent, bytes in all) as the upload goes.
            tag: the tag of the APP script that places its calls (docs/APP.md).
            app: the APP script that places its calls when a call names none.
            public: its public trigger ``/fn/MODULE/NAME`` answers callers
                without a key; not public when None.
            secrets: the names of the caller's secrets its environment holds
                (``set_secret``); none when None.

        Returns:
            The function's description (hash, size, abi, limits, workers, ...); with
            events or sinks, also one status per entry (``events``, ``sinks``) and
            counts (``events_metadata``, ``sinks_metadata``). An entry that failed
            is not an error: the function is created with the others (status 207).
        """
        fields, files = _function_form(
            name=name,
            code=code,
            memory=memory,
            timeout=timeout,
            http_allow=http_allow,
            events=events,
            sinks=sinks,
            tag=tag,
            app=app,
            public=public,
            secrets=secrets,
        )
        fields["wait_for_workers"] = "true" if wait_for_workers else "false"
        ctype, body = encode_multipart(fields, files)
        path = f"/v1/fn/{_segment(module)}"
        return _as_dict(self._call("POST", path, body, content_type=ctype, progress=progress))

    def function_logs(self, module: str, name: str, limit: int = 20) -> list[dict[str, Any]]:
        """What a function logged in its latest invocations, newest first.

        Args:
            module: its module.
            name: its name.
            limit: how many invocations (1 to 200).

        Returns:
            ``[{"id", "started", "worker", "outcome", "duration_ms", "logs", "truncated"}]``.
        """
        path = f"/v1/fn/{_segment(module)}/{_segment(name)}/logs?limit={int(limit)}"
        return _as_list(self._call("GET", path))

    def recent_invocations(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest invocations through the core, newest first.

        Args:
            limit: how many (1 to 1000).

        Returns:
            ``[{"id", "module", "name", "worker", "outcome", "attempts", "started",
            "duration_ms"}]``.
        """
        return _as_list(self._call("GET", f"/v1/invocations?limit={int(limit)}"))

    def get_function(self, module: str, name: str) -> dict[str, Any]:
        """One function's description.

        Args:
            module: its module.
            name: its name.

        Returns:
            The description (hash, size, abi, memory, timeout, http_allow, ...).
        """
        return _as_dict(self._call("GET", f"/v1/fn/{_segment(module)}/{_segment(name)}"))

    def update_function(
        self,
        module: str,
        name: str,
        code: bytes | None = None,
        *,
        memory: int | None = None,
        timeout: int | None = None,
        http_allow: list[str] | None = None,
        new_name: str | None = None,
        events: list[dict[str, Any]] | None = None,
        sinks: list[dict[str, Any]] | None = None,
        clear_events: bool = False,
        clear_sinks: bool = False,
        wait_for_workers: bool = True,
        tag: str | None = None,
        app: str | None = None,
        public: bool | None = None,
        secrets: list[str] | None = None,
    ) -> dict[str, Any]:
        """Changes a function; what is None stays as it is.

        Args:
            module: its module.
            name: its name.
            code: new WebAssembly code.
            memory: a new memory cap, MiB.
            timeout: a new time limit, ms.
            http_allow: a new list of hosts it may reach (``[]`` clears it).
            new_name: a new name.
            events: FunLess entries that replace its events (``[]`` keeps them).
            sinks: FunLess entries that replace its sinks (``[]`` keeps them).
            clear_events: remove all its events (sends ``null``); not with ``events``.
            clear_sinks: remove all its sinks (sends ``null``); not with ``sinks``.
            wait_for_workers: answer only once the workers have new code.
            tag: a new APP script tag (``""`` removes it).
            app: a new APP script to place its calls (``""`` removes it).
            public: whether its public trigger answers callers without a key.
            secrets: the secrets its environment holds, by name (``[]``: none).

        Returns:
            The updated description; with events or sinks, their statuses and
            counts as for ``create_function`` (a failed entry is not an error).

        Raises:
            ValueError: ``events`` with ``clear_events``, or ``sinks`` with ``clear_sinks``.
        """
        fields, files = _function_form(
            name=new_name,
            code=code,
            memory=memory,
            timeout=timeout,
            http_allow=http_allow,
            events=events,
            sinks=sinks,
            clear_events=clear_events,
            clear_sinks=clear_sinks,
            tag=tag,
            app=app,
            public=public,
            secrets=secrets,
        )
        fields["wait_for_workers"] = "true" if wait_for_workers else "false"
        ctype, body = encode_multipart(fields, files)
        path = f"/v1/fn/{_segment(module)}/{_segment(name)}"
        return _as_dict(self._call("PUT", path, body, content_type=ctype))

    def delete_function(self, module: str, name: str) -> None:
        """Deletes a function.

        Args:
            module: its module.
            name: its name.
        """
        self._call("DELETE", f"/v1/fn/{_segment(module)}/{_segment(name)}")

    def invoke(
        self, module: str, name: str, args: dict[str, Any] | None = None, app: str | None = None
    ) -> Any:
        """Runs a function.

        Args:
            module: its module.
            name: its name.
            args: its JSON input; ``{}`` when None.
            app: the APP script to place the call by (None: the function's own,
                else the most free memory).

        Returns:
            Its output: decoded JSON, or a string when it printed other text.

        Raises:
            FlessError: 422 when the function failed, 504 when it ran out of
                time, 503 when no worker can run it, and as for every call.
        """
        path = f"/v1/fn/{_segment(module)}/{_segment(name)}"
        body: dict[str, Any] = {"args": args if args is not None else {}}
        if app is not None:
            body["scheduling"] = {"language": "app", "script": app}
        return self._call("POST", path, body)

    def invoke_async(self, module: str, name: str, args: dict[str, Any] | None = None) -> str:
        """Queues a run of a function and returns at once.

        Args:
            module: its module.
            name: its name.
            args: its JSON input; ``{}`` when None.

        Returns:
            The invocation's id, for ``get_invocation``.

        Raises:
            FlessError: 429 when the queue is full, and as for every call.
        """
        path = f"/v1/fn/{_segment(module)}/{_segment(name)}?async=true"
        data = _as_dict(self._call("POST", path, {"args": args if args is not None else {}}))
        ident = data.get("id")
        if not isinstance(ident, str) or not ident:
            raise FlessError(0, f"unexpected answer from {self.url}: no invocation id")
        return ident

    def get_invocation(self, ident: str) -> dict[str, Any]:
        """Where a queued invocation is.

        Args:
            ident: the id ``invoke_async`` returned.

        Returns:
            ``{"id", "function", "state", "queued"}``; ``state`` is ``queued``,
            ``running``, ``ok`` (with ``result``) or ``error`` (with ``error``:
            ``{"kind", "message"}``), and ``finished`` is there once done.

        Raises:
            FlessError: 404 when the id is unknown or expired, and as for every call.
        """
        return _as_dict(self._call("GET", f"/v1/invocations/{_segment(ident)}"))

    # -- APP scripts

    def list_app_scripts(self) -> list[dict[str, Any]]:
        """The APP scripts: ``[{"id", "name", "script"}, ...]``, ``script`` parsed."""
        return _as_list(self._call("GET", "/v1/scripts/app"))

    def get_app_script(self, name: str) -> dict[str, Any]:
        """One APP script: ``{"id", "name", "script"}``."""
        return _as_dict(self._call("GET", f"/v1/scripts/app/{_segment(name)}"))

    def put_app_script(self, name: str, text: bytes, replace: bool = False) -> dict[str, Any]:
        """Creates an APP script from its YAML, or replaces the one of that name.

        Raises:
            FlessError: 400 naming the tag and the reason when it does not
                parse, 422 when creating a name taken, 404 when replacing none.
        """
        fields = {} if replace else {"name": name}
        ctype, body = encode_multipart(fields, {"file": (f"{name}.yaml", text)})
        if replace:
            path = f"/v1/scripts/app/{_segment(name)}"
            return _as_dict(self._call("PUT", path, body, content_type=ctype))
        return _as_dict(self._call("POST", "/v1/scripts/app", body, content_type=ctype))

    def delete_app_script(self, name: str) -> None:
        """Deletes an APP script; functions naming it get 404 until it is back."""
        self._call("DELETE", f"/v1/scripts/app/{_segment(name)}")

    # -- secrets

    def list_secrets(self) -> list[dict[str, Any]]:
        """This key's secrets: ``[{"name", "created", "updated"}, ...]``, never a value."""
        return _as_list(self._call("GET", "/v1/secrets"))

    def set_secret(self, name: str, value: str) -> tuple[dict[str, Any], bool]:
        """Creates or replaces one of this key's secrets.

        Returns:
            Its name and dates, and whether it was created (not replaced).

        Raises:
            FlessError: 400 for a bad value (empty, over 16 KiB, a NUL), never quoting it.
        """
        status, data = self._answer("PUT", f"/v1/secrets/{_segment(name)}", {"value": value})
        return _as_dict(data), status == 201

    def delete_secret(self, name: str) -> None:
        """Deletes one of this key's secrets; what names it fails, naming it."""
        self._call("DELETE", f"/v1/secrets/{_segment(name)}")

    # -- subjects (admin)

    def list_subjects(self) -> list[dict[str, Any]]:
        """The users (admin key only).

        Returns:
            ``[{"name": ..., "role": ..., "created": ...}, ...]``.
        """
        return _as_list(self._call("GET", "/v1/admin/subjects"))

    def create_subject(self, name: str) -> str:
        """Creates a user (admin key only).

        Args:
            name: the user's name.

        Returns:
            The user's new key; the server shows it only this once.
        """
        data = _as_dict(self._call("POST", "/v1/admin/subjects", {"subject": {"name": name}}))
        token = data.get("token")
        if not isinstance(token, str):
            raise FlessError(0, f"unexpected answer from {self.url}: no token for {name}")
        return token

    def revoke_subject(self, name: str) -> None:
        """Deletes a user; its key stops working at once (admin key only).

        Args:
            name: the user's name.
        """
        self._call("DELETE", f"/v1/admin/subjects/{_segment(name)}")

    def rotate_admin_key(self) -> str:
        """Replaces the admin key this client uses (admin key only).

        The old key stops working at once; this client goes on with the new one.

        Returns:
            The new key; the server shows it only this once.
        """
        data = _as_dict(self._call("POST", "/v1/admin/key"))
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise FlessError(0, f"unexpected answer from {self.url}: no new key")
        self.key = token
        return token

    # -- nodes

    def list_nodes(self) -> list[dict[str, Any]]:
        """The cluster's members with state, role, architecture and memory.

        Returns:
            ``[{"name", "address", "state", "role", "arch", "mem_total", "mem_free", ...}]``.
        """
        return _as_list(self._call("GET", "/v1/nodes"))

    def join_node(self, address: str) -> None:
        """Asks the core to join the node whose gossip port is at ``address`` (admin key only).

        Args:
            address: ``HOST:PORT`` of the node's gossip port.
        """
        self._call("POST", "/v1/admin/nodes", {"address": address})

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        progress: Progress | None = None,
    ) -> Any:
        """Sends one request; returns the answer's ``data`` (None for an empty body)."""
        return self._answer(method, path, body, content_type=content_type, progress=progress)[1]

    def _answer(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        progress: Progress | None = None,
    ) -> tuple[int, Any]:
        """Sends one request; returns the answer's status and ``data`` (None for an empty body)."""
        payload: bytes | None
        if isinstance(body, bytes):
            payload = body
        elif body is not None:
            payload = json.dumps(body).encode()
        else:
            payload = None
        headers = {"Accept": "application/json", "User-Agent": f"fless-client/{__version__}"}
        if payload is not None:
            headers["Content-Type"] = content_type
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        status, reason, raw = self._exchange(
            method, self._prefix + path, payload, headers, progress
        )
        if status >= 300:  # a redirect is not followed: the URL is wrong
            raise FlessError(status, _error_detail(status, reason, raw))
        if not raw.strip():
            return status, None
        try:
            document = json.loads(raw)
        except ValueError as exc:
            raise FlessError(status, f"{self.url} did not answer with JSON: {exc}") from exc
        if not isinstance(document, dict) or "data" not in document:
            raise FlessError(status, f"{self.url} answered without a 'data' field")
        return status, document["data"]

    def _exchange(
        self,
        method: str,
        target: str,
        payload: bytes | None,
        headers: dict[str, str],
        progress: Progress | None = None,
    ) -> tuple[int, str, bytes]:
        """Sends a request and reads the whole answer, reconnecting once if the server
        had closed the kept-alive connection."""
        for attempt in range(2):
            reused = self._conn is not None and self._conn.sock is not None
            conn = self._connect()
            body: bytes | Iterator[bytes] | None = payload
            if payload is not None and progress is not None:
                headers = {**headers, "Content-Length": str(len(payload))}
                body = _chunks(payload, progress)
            try:
                conn.request(method, target, body=body, headers=headers)
                response = conn.getresponse()
                return response.status, response.reason, response.read()
            except _STALE as exc:
                self.close()
                if reused and attempt == 0:
                    continue
                raise self._unreachable(exc) from exc
            except TimeoutError as exc:
                self.close()
                raise FlessError(
                    0, f"no answer from fless at {self.url} within {self.timeout:g} s"
                ) from exc
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise self._unreachable(exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _connect(self) -> http.client.HTTPConnection:
        if self._conn is not None and self._conn.sock is not None:
            return self._conn
        conn: http.client.HTTPConnection
        if self._https:
            context = self._ssl_context or ssl.create_default_context()
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=self.connect_timeout, context=context
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.connect_timeout)
        try:
            conn.connect()
        except OSError as exc:
            conn.close()
            raise self._unreachable(exc) from exc
        # Connecting is quick or hopeless; an answer may take as long as the function runs.
        if conn.sock is not None:
            conn.sock.settimeout(self.timeout)
        self._conn = conn
        return conn

    def _unreachable(self, exc: BaseException) -> FlessError:
        where = f"cannot reach fless at {self.url}"
        if isinstance(exc, ConnectionRefusedError):
            return FlessError(0, f"{where}: connection refused (is fless-node running?)")
        if isinstance(exc, socket.gaierror):
            return FlessError(0, f"{where}: unknown host {self._host}")
        if isinstance(exc, TimeoutError):
            return FlessError(0, f"{where}: timed out after {self.connect_timeout:g} s")
        if isinstance(exc, ssl.SSLError):
            return FlessError(0, f"{where}: TLS failed: {exc.reason or exc}")
        if isinstance(exc, http.client.RemoteDisconnected):
            return FlessError(0, f"fless at {self.url} closed the connection without answering")
        if isinstance(exc, http.client.HTTPException):
            return FlessError(0, f"bad HTTP answer from {self.url}: {exc!r}")
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return FlessError(0, f"{where}: {text or type(exc).__name__}")


UPLOAD_CHUNK = 64 * 1024


def _chunks(payload: bytes, progress: Progress) -> Iterator[bytes]:
    """``payload`` in pieces, reporting each as sent."""
    total = len(payload)
    for start in range(0, total, UPLOAD_CHUNK):
        piece = payload[start : start + UPLOAD_CHUNK]
        yield piece
        progress(start + len(piece), total)


def _as_dict(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise FlessError(0, f"unexpected answer: expected an object, got {type(data).__name__}")
    return data


def _as_list(data: Any) -> list[dict[str, Any]]:
    if not isinstance(data, list):
        raise FlessError(0, f"unexpected answer: expected a list, got {type(data).__name__}")
    return data
