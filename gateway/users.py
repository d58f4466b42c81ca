"""Portal routes for users and their devices."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from approvals.challenge import rfc3339
from approvals.records import DeviceRecord
from gateway.auth import require_key
from gateway.bodies import PutUser, path_user_id, read_body
from gateway.problems import ProblemError
from gateway.responses import json_response
from gateway.services import services
from gateway.views import user_view

routes = web.RouteTableDef()


@routes.put("/v1/users/{user_id}")
async def put_user(request: web.Request) -> web.Response:
    """Create or update a user (201 when created, 200 when updated)."""
    identity = await require_key(request)
    user_id = path_user_id(request)
    body = await read_body(request, PutUser)
    svc = services(request)
    fields = {
        "display_name": body.display_name or "",
        "email": body.email or "",
        "role": body.role,
        "mfa_required": "1" if body.mfa_required else "0",
    }
    policy = await svc.policy_cache.get(identity.tenant)
    created, record = await svc.users.put(
        identity.tenant, user_id, fields, period_days=policy.enrollment_period_days
    )
    _, devices = await svc.users.get(identity.tenant, user_id)
    view = user_view(record, devices, policy, svc.clock())
    return json_response(view, status=201 if created else 200)


@routes.get("/v1/users/{user_id}")
async def get_user(request: web.Request) -> web.Response:
    """A user with the state of their factors and enrollment period."""
    identity = await require_key(request)
    user_id = path_user_id(request)
    svc = services(request)
    record, devices = await svc.users.get(identity.tenant, user_id)
    if record is None:
        raise ProblemError("not_found", "no such user")
    policy = await svc.policy_cache.get(identity.tenant)
    return json_response(user_view(record, devices, policy, svc.clock()))


def device_summary(record: DeviceRecord) -> dict[str, Any]:
    """A device as the portal lists it (no secrets, no push token)."""
    return {
        "device_id": record.id,
        "name": record.name or None,
        "platform": record.platform,
        "app_bundle_id": record.app_bundle_id or None,
        "push_token_valid": record.token_valid,
        "created_at": rfc3339(record.created_at_ms),
        "last_used_at": rfc3339(record.last_used_at_ms),
    }


@routes.get("/v1/users/{user_id}/devices")
async def list_devices(request: web.Request) -> web.Response:
    """The user's enrolled push devices."""
    identity = await require_key(request)
    user_id = path_user_id(request)
    svc = services(request)
    records = await svc.devices.list_for_user(identity.tenant, user_id)
    return json_response({"items": [device_summary(r) for r in records]})


@routes.delete("/v1/users/{user_id}/devices/{device_id}")
async def remove_device(request: web.Request) -> web.Response:
    """Admin: remove one of the user's devices."""
    identity = await require_key(request, "admin")
    user_id = path_user_id(request)
    svc = services(request)
    removed = await svc.devices.remove(
        tenant=identity.tenant,
        user_id=user_id,
        device_id=request.match_info["device_id"][:128],
        by="admin",
    )
    if not removed:
        raise ProblemError("not_found", "no such device")
    return web.Response(status=204)
