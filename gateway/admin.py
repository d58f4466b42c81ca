"""Admin routes: the tenant policy."""

from __future__ import annotations

from aiohttp import web

from gateway.auth import require_key
from gateway.bodies import read_json_object
from gateway.problems import ProblemError
from gateway.responses import json_response
from gateway.services import services
from policies.policy import Policy, PolicyError, parse_policy, patch_policy

routes = web.RouteTableDef()


def _policy_problem(exc: PolicyError) -> ProblemError:
    names = ", ".join(f["field"] for f in exc.fields)
    return ProblemError("invalid_policy", f"invalid policy fields: {names}", errors=exc.fields)


@routes.get("/v1/policy")
async def get_policy(request: web.Request) -> web.Response:
    """The tenant's policy (defaults where unset)."""
    identity = await require_key(request, "admin")
    policy = await services(request).tenants.get_policy(identity.tenant)
    return json_response(policy.model_dump())


async def _store(request: web.Request, tenant: str, policy: Policy) -> web.Response:
    svc = services(request)
    await svc.tenants.put_policy(tenant, policy)
    svc.policy_cache.put(tenant, policy)
    return json_response(policy.model_dump())


@routes.put("/v1/policy")
async def put_policy(request: web.Request) -> web.Response:
    """Replace the whole policy; fields left out take their defaults."""
    identity = await require_key(request, "admin")
    document = await read_json_object(request)
    try:
        policy = parse_policy(document)
    except PolicyError as exc:
        raise _policy_problem(exc) from None
    return await _store(request, identity.tenant, policy)


@routes.patch("/v1/policy")
async def patch_policy_route(request: web.Request) -> web.Response:
    """Change only the given fields."""
    identity = await require_key(request, "admin")
    document = await read_json_object(request)
    current = await services(request).tenants.get_policy(identity.tenant)
    try:
        policy = patch_policy(current, document)
    except PolicyError as exc:
        raise _policy_problem(exc) from None
    return await _store(request, identity.tenant, policy)
