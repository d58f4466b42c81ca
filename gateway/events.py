"""Admin route for the audit trail: the tenant's events, paged."""

from __future__ import annotations

import re

from aiohttp import web

from gateway.auth import require_key
from gateway.problems import ProblemError
from gateway.responses import json_response
from gateway.services import services, tag_request

routes = web.RouteTableDef()

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_EVENT_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")


def _query_problem(name: str, message: str) -> ProblemError:
    return ProblemError(
        "invalid_request", f"{name}: {message}", errors=[{"field": name, "message": message}]
    )


@routes.get("/v1/events")
async def list_events(request: web.Request) -> web.Response:
    """Events of the tenant, oldest first, after the event id ``after``; paged by ``next``."""
    identity = await require_key(request, "admin")
    tag_request(request, tenant=identity.tenant)
    after = request.query.get("after") or None
    if after is not None and not _EVENT_ID.fullmatch(after):
        raise _query_problem("after", "an event id such as 1700000000000-0")
    raw_limit = request.query.get("limit", str(DEFAULT_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise _query_problem("limit", f"an integer from 1 to {MAX_LIMIT}")
    limit = int(raw_limit)
    items = await services(request).events.page(identity.tenant, after, limit)
    next_id = items[-1]["id"] if len(items) == limit else None
    return json_response({"items": items, "next": next_id})
