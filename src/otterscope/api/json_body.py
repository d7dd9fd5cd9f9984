"""Small JSON request bodies of the query API (fetch, SQL): bounded, an object, known fields."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from otterscope.errors import BadRequest, PayloadTooLarge

MAX_BODY = 64 * 1024


async def json_object(request: Request, fields: set[str], example: str) -> dict[str, Any]:
    """The body as a JSON object with only ``fields`` (413 past ``MAX_BODY``, else 400)."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise PayloadTooLarge(f"request body is larger than {MAX_BODY} bytes")
    if not raw.strip():
        raise BadRequest(f"body must be JSON: {example}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRequest("body must be a JSON object")
    unknown = sorted(set(doc) - fields)
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r}; expected {sorted(fields)}")
    return doc
