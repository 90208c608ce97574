"""The REST API: FunLess's v1 routes as a Falcon ASGI app, plus fless's own."""

from ._app import create_app, openapi_document
from ._errors import status_of
from ._stopping import answer_cut_off

__all__ = ["answer_cut_off", "create_app", "openapi_document", "status_of"]
