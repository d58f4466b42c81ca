"""Admin routes for the audit trail: the event list and the tenant's webhook."""

from __future__ import annotations

import re
import secrets
from typing import Any

from aiohttp import web

from approvals.challenge import rfc3339
from approvals.store.webhooks import Webhook, secret_context
from gateway.auth import require_key
from gateway.bodies import PutWebhook, read_body
from gateway.problems import ProblemError
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
    return web.json_response({"items": items, "next": next_id})


def _webhook_view(hook: Webhook, queued: int) -> dict[str, Any]:
    return {
        "url": hook.url,
        "events": hook.events,
        "created_at": rfc3339(hook.created_at),
        "updated_at": rfc3339(hook.updated_at),
        "queued": queued,
    }


@routes.put("/v1/webhooks")
async def put_webhook(request: web.Request) -> web.Response:
    """Set the tenant's webhook; answers with a new signing secret, shown only here."""
    identity = await require_key(request, "admin")
    body = await read_body(request, PutWebhook)
    svc = services(request)
    tag_request(request, tenant=identity.tenant)
    signing_secret = "whsec_" + secrets.token_urlsafe(32)
    replaced = await svc.webhooks.put(
        identity.tenant,
        url=body.url,
        events=body.events,
        sealed_secret=svc.secret_box.seal(signing_secret, context=secret_context(identity.tenant)),
        now_ms=svc.now_ms(),
    )
    hook = await svc.webhooks.get(identity.tenant)
    if hook is None:
        raise ProblemError("not_found", "the webhook was removed meanwhile")
    view = _webhook_view(hook, await svc.webhooks.queued(identity.tenant))
    view["secret"] = signing_secret
    return web.json_response(view, status=200 if replaced else 201)


@routes.get("/v1/webhooks")
async def get_webhook(request: web.Request) -> web.Response:
    """The tenant's webhook (never its secret) and how many deliveries are queued."""
    identity = await require_key(request, "admin")
    svc = services(request)
    hook = await svc.webhooks.get(identity.tenant)
    if hook is None:
        raise ProblemError("not_found", "no webhook is set")
    return web.json_response(_webhook_view(hook, await svc.webhooks.queued(identity.tenant)))


@routes.delete("/v1/webhooks")
async def delete_webhook(request: web.Request) -> web.Response:
    """Remove the tenant's webhook and its queued deliveries."""
    identity = await require_key(request, "admin")
    if not await services(request).webhooks.delete(identity.tenant):
        raise ProblemError("not_found", "no webhook is set")
    return web.Response(status=204)
