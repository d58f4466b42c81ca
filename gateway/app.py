"""``create_app``: the one seam through which tests, the demo and ``serve`` build the gateway."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web

from approvals.secretbox import SecretBox
from approvals.store import keys
from approvals.store.backend import Backend, open_backend
from approvals.store.challenges import ChallengeStore
from approvals.store.clock import ServerClock, first_sync, keep_in_time
from approvals.store.devices import DeviceStore
from approvals.store.events import EventStore
from approvals.store.tenants import TenantStore
from approvals.store.totp import TotpStore
from approvals.store.users import UserStore
from approvals.store.webhooks import WebhookStore
from gateway import (
    accounts,
    admin,
    challenges,
    device,
    enrollment,
    events,
    ops,
    totp,
    users,
    webhooks,
)
from gateway.bodies import MAX_BODY_BYTES
from gateway.caches import AuthCache, PolicyCache
from gateway.clientip import parse_networks
from gateway.cluster_waiters import ClusterHub
from gateway.metrics import GatewayMetrics
from gateway.middleware import problem_middleware
from gateway.services import SERVICES, Services
from gateway.waiters import Hub
from pushgate.settings import Settings


def build_services(settings: Settings, backend: Backend) -> Services:
    """Wire the stores, caches and hub for one app over ``backend`` (nothing connects yet)."""
    settings.secret_key_bytes  # noqa: B018 - fail early without a secret key
    tenants = TenantStore(backend)
    auth_cache = AuthCache(tenants)
    policy_cache = PolicyCache(tenants)

    def on_change(message: str) -> None:
        auth_cache.forget(message)
        policy_cache.on_change_notice(message)

    listeners = {keys.AUTH_CHANGED_CHANNEL: on_change}
    hub: Hub | ClusterHub
    if settings.redis_cluster:
        hub = ClusterHub(
            backend.cluster_map_client(), listeners=listeners, node_client=backend.node_client
        )
    else:
        hub = Hub(backend.redis, listeners=listeners)
    return Services(
        settings=settings,
        backend=backend,
        clock=backend.clock,
        hub=hub,
        metrics=GatewayMetrics(),
        auth_cache=auth_cache,
        policy_cache=policy_cache,
        challenges=ChallengeStore(backend),
        devices=DeviceStore(backend),
        tenants=tenants,
        users=UserStore(backend),
        totp=TotpStore(backend),
        events=EventStore(backend),
        webhooks=WebhookStore(backend),
        secret_box=SecretBox(settings.secret_key_bytes),
        trusted_networks=parse_networks(settings.trusted_proxy_list),
    )


async def _resources(app: web.Application) -> AsyncIterator[None]:
    svc = app[SERVICES]
    await svc.hub.start()
    await first_sync(svc.clock, svc.backend.redis)
    clock = asyncio.create_task(keep_in_time(svc.clock, svc.backend.redis), name="clock")
    trimming = asyncio.create_task(
        svc.allocator.run(open_sockets=lambda: len(svc.websockets)), name="allocator-trim"
    )
    yield
    for task in (trimming, clock):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await svc.hub.close()
    await svc.backend.close()


async def close_websockets(app: web.Application) -> None:
    """Tell every open websocket to reconnect elsewhere (1012 service restart)."""
    svc = app[SERVICES]
    svc.draining = True
    closing = [
        ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"server restarting")
        for ws in list(svc.websockets)
        if not ws.closed
    ]
    await asyncio.gather(*closing, return_exceptions=True)


def create_app(
    settings: Settings, *, clock: ServerClock | None = None, backend: Backend | None = None
) -> web.Application:
    """The gateway application. Resources open on startup and close on cleanup.

    ``backend`` is the Redis backend the composition root opened (the app closes it on
    cleanup; its clock is the app's); without one the app opens its own from ``settings``,
    deciding with ``clock``.
    """
    app = web.Application(middlewares=[problem_middleware], client_max_size=MAX_BODY_BYTES)
    app[SERVICES] = build_services(settings, backend or open_backend(settings, clock))
    for module in (
        challenges,
        device,
        enrollment,
        users,
        admin,
        ops,
        totp,
        accounts,
        events,
        webhooks,
    ):
        app.router.add_routes(module.routes)
    app.cleanup_ctx.append(_resources)
    app.on_shutdown.append(close_websockets)
    return app
