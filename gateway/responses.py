"""JSON bodies: one fast serializer (orjson) for responses and websocket frames.

orjson encodes a portal view in about a tenth of the standard library's time; its output is
compact and UTF-8 (the standard library's escapes non-ASCII), which is the same JSON.
problem+json bodies keep the standard library's bytes (``gateway/problems.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web


def dumps(obj: Any) -> str:
    """``obj`` as JSON text (for ``send_json(..., dumps=dumps)`` and text bodies)."""
    return orjson.dumps(obj).decode()


def json_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """Like ``aiohttp.web.json_response`` (``application/json; charset=utf-8``), via orjson."""
    return web.Response(
        body=orjson.dumps(data),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )
