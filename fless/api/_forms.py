"""Reading a multipart form's fields with size limits, for every route that takes one."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import falcon.asgi
from falcon.media.multipart import MultipartParseError

from fless.core import BadRequest, CoreError


async def read_fields(
    req: falcon.asgi.Request,
    limits: Mapping[str, int],
    over: Callable[[str, int], CoreError],
    others: int | None = None,
) -> dict[str, bytes]:
    """The form's fields, each read whole up to its limit, in the order sent.

    Args:
        req: a ``multipart/form-data`` request (the caller checks the type).
        limits: the fields the route knows, each with its most bytes; each
            may be given once, as RFC 7578 forms are read here.
        over: the error for a field over its limit (name, limit).
        others: the most bytes of a field the route does not know, which is
            read and returned too; None: skipped unread.

    Raises:
        BadRequest: a malformed body, a part with no field name, a known
            field given twice, or headers that are not UTF-8.
    """
    fields: dict[str, bytes] = {}
    try:
        parts = await req.get_media()
        async for part in parts:
            if not part.name:
                raise BadRequest("malformed multipart body: a part has no field name")
            limit = limits.get(part.name, others)
            if limit is None:
                continue
            if part.name in fields and part.name in limits:
                raise BadRequest(f"multipart field {part.name!r} is given more than once")
            data = await part.stream.read(limit + 1)
            if len(data) > limit:
                raise over(part.name, limit)
            fields[part.name] = data
    except MultipartParseError as exc:
        raise BadRequest(f"malformed multipart body: {exc.description}") from None
    except UnicodeDecodeError:
        # falcon decodes a part's Content-Disposition as UTF-8 when it is read.
        raise BadRequest("malformed multipart body: a part's headers are not UTF-8") from None
    return fields
