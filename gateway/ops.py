"""Operational routes: liveness, readiness, Prometheus metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from gateway.openapi import openapi_document
from gateway.responses import json_response
from gateway.services import services

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """The process is alive (no dependency checks)."""
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready for traffic: Redis answers, the pub/sub hub is connected, not draining."""
    svc = services(request)
    checks = {"redis": False, "pubsub": svc.hub.connected, "draining": svc.draining}
    try:
        checks["redis"] = await asyncio.wait_for(svc.backend.ping(), 1.0)
    except (RedisError, OSError, TimeoutError):
        checks["redis"] = False
    ready = bool(checks["redis"]) and bool(checks["pubsub"]) and not svc.draining
    return json_response(
        {"status": "ready" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
        headers=None if ready else {"Retry-After": "1"},
    )


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition of this process's metrics."""
    svc = services(request)
    body = generate_latest(svc.metrics.registry)
    for extra in svc.extra_registries:
        body += generate_latest(extra)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of every route."""
    return json_response(openapi_document(services(request).settings.public_url))
