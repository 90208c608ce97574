"""What a fless Python function may call besides the standard library."""

import json
from dataclasses import dataclass
from typing import Any

import wit_world


@dataclass
class Response:
    """An HTTP response: its status and its body as text."""

    status: int
    body: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body)


def http_request(
    method: str, url: str, body: str = "", headers: dict[str, str] | None = None
) -> Response:
    """One request (GET, POST, PUT or DELETE) to a host on the function's allow-list.

    Raises:
        ConnectionError: the request failed (no status).
    """
    pairs = list((headers or {}).items())
    status, text = wit_world.http_request(method.upper(), url, pairs, body)
    if status == 0:
        raise ConnectionError(f"{method} {url}: the request failed")
    return Response(status, text)


def log(line: str) -> None:
    """One line in the function's log (print() does the same)."""
    wit_world.log(line)
