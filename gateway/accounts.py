"""Admin routes on one user's standing: unlock, and the enrollment period."""

from __future__ import annotations

from aiohttp import web

from gateway.auth import require_key
from gateway.bodies import EnrollmentPeriod, NoBody, path_user_id, read_body
from gateway.problems import ProblemError
from gateway.responses import json_response
from gateway.services import services, tag_request
from gateway.views import user_view

routes = web.RouteTableDef()


@routes.post("/v1/users/{user_id}/unlock")
async def unlock_user(request: web.Request) -> web.Response:
    """Admin: clear the user's lock, failure and unanswered-push counts and fraud block."""
    identity = await require_key(request, "admin")
    user_id = path_user_id(request)
    await read_body(request, NoBody)
    svc = services(request)
    tag_request(request, tenant=identity.tenant)
    if not await svc.users.unlock(identity.tenant, user_id):
        raise ProblemError("not_found", "no such user")
    return web.Response(status=204)


@routes.post("/v1/users/{user_id}/enrollment-period")
async def extend_enrollment_period(request: web.Request) -> web.Response:
    """Admin: extend the enrollment period by ``days`` (from now if it already ended)."""
    identity = await require_key(request, "admin")
    user_id = path_user_id(request)
    body = await read_body(request, EnrollmentPeriod)
    svc = services(request)
    tag_request(request, tenant=identity.tenant)
    deadline = await svc.users.extend_enrollment(identity.tenant, user_id, body.days, svc.now_ms())
    if deadline is None:
        raise ProblemError("not_found", "no such user")
    record, devices = await svc.users.get(identity.tenant, user_id)
    if record is None:
        raise ProblemError("not_found", "no such user")
    policy = await svc.policy_cache.get(identity.tenant)
    return json_response(user_view(record, devices, policy, svc.clock()))
