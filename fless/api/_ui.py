"""The web dashboard: the static page at ``/ui``, served from the package.

The page holds no data of its own: it calls the v1 API from the browser with
the key its user types, exactly as the CLI does, so its files need no key.
They are answered by a middleware placed ahead of authentication (which
would otherwise refuse a request without a key) and outside the router
(whose routes are the v1 API, each one documented in ``openapi.json``).

Every answer carries a Content-Security-Policy that lets the page load
scripts, styles and data from this origin only: no CDN, no inline script,
nothing a function's output could inject into the page can run.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass

import falcon
import falcon.asgi

PREFIX = "/ui"
INDEX = "index.html"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        # The page's forms are sent by its script; a form that would submit
        # itself (and put the key in the URL) is refused.
        "form-action 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class Page:
    """One file of the dashboard: its bytes and media type."""

    body: bytes
    media_type: str


def shipped_pages() -> dict[str, Page]:
    """The dashboard's files in the package (``fless/api/ui``), by file name.

    Returns:
        Every file with a known media type; nothing else is ever served.
    """
    pages: dict[str, Page] = {}
    for entry in importlib.resources.files("fless.api").joinpath("ui").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _MEDIA_TYPES:
            pages[entry.name] = Page(entry.read_bytes(), _MEDIA_TYPES[suffix])
    return pages


class Dashboard:
    """Middleware that answers ``GET /ui`` and ``GET /ui/{file}`` before authentication.

    Args:
        pages: the files to serve by name; the package's own by default.
    """

    def __init__(self, pages: dict[str, Page] | None = None) -> None:
        # Read once per API process: a handful of small files.
        self._pages = shipped_pages() if pages is None else pages

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Serves a dashboard file and ends the request; leaves any other path alone."""
        if req.path != PREFIX and not req.path.startswith(PREFIX + "/"):
            return
        name = req.path.removeprefix(PREFIX).removeprefix("/") or INDEX
        if req.method not in ("GET", "HEAD"):
            raise falcon.HTTPMethodNotAllowed(
                ["GET", "HEAD"], description=f"{req.path} is a page of the dashboard: GET it"
            )
        page = self._pages.get(name)
        if page is None:
            raise falcon.HTTPNotFound(description=f"the dashboard has no file {name!r}")
        resp.status = falcon.HTTP_200
        resp.content_type = page.media_type
        resp.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Referrer-Policy", "no-referrer")
        # Small files: always revalidate, so an upgraded node serves its own page.
        resp.set_header("Cache-Control", "no-cache")
        resp.data = page.body
        resp.complete = True
