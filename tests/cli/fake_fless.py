"""A fake fless server on 127.0.0.1 that records the requests it gets."""

from __future__ import annotations

import email
import email.policy
import json
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class FormPart:
    """One field of a multipart body."""

    filename: str | None
    content_type: str | None
    content: bytes


@dataclass(frozen=True)
class Recorded:
    """A request the fake server received."""

    method: str
    path: str
    headers: Message
    body: bytes
    client_port: int  # one per TCP connection

    def json(self) -> Any:
        """The body, decoded as JSON."""
        return json.loads(self.body)

    def form(self) -> dict[str, FormPart]:
        """The body, parsed back as multipart/form-data with the stdlib email parser."""
        head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        message = email.message_from_bytes(head + self.body, policy=email.policy.HTTP)
        assert isinstance(message, EmailMessage)
        assert message.is_multipart()
        assert not message.defects, message.defects
        parts: dict[str, FormPart] = {}
        for part in message.iter_parts():
            assert isinstance(part, EmailMessage)
            assert part.get_content_disposition() == "form-data"
            name = part.get_param("name", header="content-disposition")
            assert isinstance(name, str)
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            content_type = part["Content-Type"]
            parts[name] = FormPart(
                part.get_filename(), str(content_type) if content_type else None, payload
            )
        return parts


@dataclass
class FakeFless:
    """What the fake server answers, and what it was asked."""

    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    routes: dict[tuple[str, str], tuple[int, bytes]] = field(default_factory=dict)
    # Answers given in turn, before the route's answer (see ``then``).
    queued: dict[tuple[str, str], list[tuple[int, bytes]]] = field(default_factory=dict)
    # Close each connection after answering without saying so (no "Connection: close"),
    # as a server does when a kept-alive connection idles past its timeout.
    drop_after_answer: bool = False
    # Close the connection without answering at all.
    hang_up: bool = False
    delay: float = 0.0

    def reply(self, method: str, path: str, status: int = 200, body: Any = None) -> None:
        """Sets the answer to ``method path``: ``body`` as JSON, or empty when None."""
        raw = b"" if body is None else json.dumps(body).encode()
        self.routes[(method, path)] = (status, raw)

    def data(self, method: str, path: str, data: Any, status: int = 200) -> None:
        """Sets a success answer ``{"data": data}``."""
        self.reply(method, path, status, {"data": data})

    def then(self, method: str, path: str, *data: Any) -> None:
        """Answers ``method path`` with each ``{"data": d}`` in turn; the last one stays."""
        answers = [(200, json.dumps({"data": d}).encode()) for d in data]
        self.queued[(method, path)] = answers[:-1]
        self.routes[(method, path)] = answers[-1]

    def error(self, method: str, path: str, status: int, detail: str) -> None:
        """Sets an error answer in the API's shape."""
        self.reply(method, path, status, {"errors": {"detail": detail}})

    @property
    def last(self) -> Recorded:
        """The latest request."""
        return self.requests[-1]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeFless) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real server
    server: _Server

    def _handle(self) -> None:
        fake = self.server.fake
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fake.requests.append(
            Recorded(self.command, self.path, self.headers, body, self.client_address[1])
        )
        if fake.hang_up:
            self.close_connection = True
            return
        time.sleep(fake.delay)
        detail = {"errors": {"detail": f"no route {self.command} {self.path}"}}
        key = (self.command, self.path)
        status, raw = fake.routes.get(key, (404, json.dumps(detail).encode()))
        if fake.queued.get(key):
            status, raw = fake.queued[key].pop(0)
        self.send_response(status)
        if raw:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)
        if fake.drop_after_answer:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(fake: FakeFless, context: ssl.SSLContext | None = None) -> Iterator[FakeFless]:
    server = _Server(fake)
    scheme = "http"
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    fake.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
