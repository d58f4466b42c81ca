"""Admin routes for the tenant's webhook: set (answers the signing secret once), read, remove."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from approvals.challenge import rfc3339
from approvals.store.webhooks import Webhook, secret_context
from gateway.auth import require_key
from gateway.bodies import PutWebhook, read_body
from gateway.problems import ProblemError
from gateway.responses import json_response
from gateway.services import services, tag_request

routes = web.RouteTableDef()


def _webhook_view(hook: Webhook, queued: int) -> dict[str, Any]:
    return {
        "url": hook.url,
        "events": hook.events,
        "created_at": rfc3339(hook.created_at),
        "updated_at": rfc3339(hook.updated_at),
        "queued": queued,
        "last_error": (
            {
                "event_id": hook.last_error.event_id,
                "error": hook.last_error.error,
                "at": rfc3339(hook.last_error.at_ms),
            }
            if hook.last_error is not None
            else None
        ),
    }


@routes.put("/v1/webhooks")
async def put_webhook(request: web.Request) -> web.Response:
    """Set the tenant's webhook; answers with a new signing secret, shown only here."""
    identity = await require_key(request, "admin")
    svc = services(request)
    allowed = svc.settings.webhook_allowed_networks
    body = await read_body(request, PutWebhook, context={"webhook_allow": allowed})
    tag_request(request, tenant=identity.tenant)
    signing_secret = "whsec_" + secrets.token_urlsafe(32)
    replaced = await svc.webhooks.put(
        identity.tenant,
        url=body.url,
        events=body.events,
        sealed_secret=svc.secret_box.seal(signing_secret, context=secret_context(identity.tenant)),
    )
    hook = await svc.webhooks.get(identity.tenant)
    if hook is None:
        raise ProblemError("not_found", "the webhook was removed meanwhile")
    view = _webhook_view(hook, await svc.webhooks.queued(identity.tenant))
    view["secret"] = signing_secret
    return json_response(view, status=200 if replaced else 201)


@routes.get("/v1/webhooks")
async def get_webhook(request: web.Request) -> web.Response:
    """The tenant's webhook (never its secret) and how many deliveries are queued."""
    identity = await require_key(request, "admin")
    svc = services(request)
    hook = await svc.webhooks.get(identity.tenant)
    if hook is None:
        raise ProblemError("not_found", "no webhook is set")
    return json_response(_webhook_view(hook, await svc.webhooks.queued(identity.tenant)))


@routes.delete("/v1/webhooks")
async def delete_webhook(request: web.Request) -> web.Response:
    """Remove the tenant's webhook and its queued deliveries."""
    identity = await require_key(request, "admin")
    if not await services(request).webhooks.delete(identity.tenant):
        raise ProblemError("not_found", "no webhook is set")
    return web.Response(status=204)
