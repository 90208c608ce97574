"""The REST API: FunLess's v1 routes as a Falcon ASGI app, plus fless's own."""

from ._app import build_app, create_app, open_platform, openapi_document
from ._errors import status_of

__all__ = ["build_app", "create_app", "open_platform", "openapi_document", "status_of"]
