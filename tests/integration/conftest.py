"""Fixtures for tests through the real path: HTTP, websockets and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from approvals.store.backend import connect
from approvals.store.tenants import TenantStore
from gateway.app import create_app
from pusher.worker import Worker
from pushgate.devicekit.authenticator import SoftAuthenticator
from pushgate.devicekit.client import DeviceClient
from pushgate.settings import Settings
from tests.conftest import ORIGIN, TestClock
from tests.portal import Portal


@dataclass
class Tenant:
    tenant_id: str
    admin_key: str
    portal_key: str


async def make_tenant(settings: Settings, name: str = "acme") -> Tenant:
    """Create a tenant with an admin and a portal key, as the CLI does."""
    assert settings.redis_url is not None
    backend = connect(settings.redis_url, cluster=settings.redis_cluster, shards=settings.shards)
    try:
        tenants = TenantStore(backend)
        tenant_id, _, admin_key = await tenants.create_tenant(name, 0)
        _, portal_key = await tenants.create_key(tenant_id, "portal", 0)
    finally:
        await backend.close()
    return Tenant(tenant_id, admin_key, portal_key)


@pytest.fixture
async def server(
    settings: Settings, clock: TestClock, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> TestServer:
    return await aiohttp_server(create_app(settings, clock=clock))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def tenant(settings: Settings) -> Tenant:
    return await make_tenant(settings)


def base_url(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
def portal(server: TestServer, session: aiohttp.ClientSession, tenant: Tenant) -> Portal:
    return Portal(session, base_url(server), tenant.portal_key)


@pytest.fixture
def admin(server: TestServer, session: aiohttp.ClientSession, tenant: Tenant) -> Portal:
    return Portal(session, base_url(server), tenant.admin_key)


Enroll = Callable[..., Awaitable[DeviceClient]]


@pytest.fixture
async def enroll(server: TestServer, session: aiohttp.ClientSession, portal: Portal) -> Enroll:
    """Enroll a software device for a user through the real enrollment routes."""

    async def _enroll(
        user_id: str,
        platform: str = "none",
        push_token: str | None = None,
        app_bundle_id: str | None = None,
    ) -> DeviceClient:
        code = await portal.enrollment_code(user_id)
        device = DeviceClient(
            base_url(server),
            session=session,
            authenticator=SoftAuthenticator.generate(origin=ORIGIN, rp_id="localhost"),
        )
        await device.enroll(
            code,
            platform=platform,  # type: ignore[arg-type]
            push_token=push_token,
            app_bundle_id=app_bundle_id,
        )
        return device

    return _enroll


@pytest.fixture
async def worker(settings: Settings, clock: TestClock) -> AsyncIterator[Worker]:
    """An in-process worker with only the in-app channel (no APNs/FCM)."""
    running = Worker(settings, clock=clock, reclaim_idle_ms=2000, sweep_interval=0.1)
    await running.start()
    yield running
    await running.stop(grace=2)
