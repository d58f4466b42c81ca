"""Redis goes away mid-test: fail closed with 503, approve nothing, recover without restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from pushgate.devicekit.authenticator import SoftAuthenticator
from pushgate.devicekit.client import DeviceClient
from pushgate.devicekit.errors import DeviceApiError
from pushgate.embedded import EmbeddedRedis
from tests.conftest import ORIGIN, TestClock, make_settings
from tests.integration.conftest import base_url, make_tenant
from tests.portal import Portal


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A server this test may stop and start (AOF on, so data survives)."""
    with EmbeddedRedis(appendonly=True) as server:
        yield server


@pytest.fixture
async def outage_portal(
    own_redis: EmbeddedRedis,
    clock: TestClock,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> AsyncIterator[tuple[Portal, DeviceClient]]:
    settings = make_settings(own_redis.url)
    server = await aiohttp_server(create_app(settings, clock=clock))
    tenant = await make_tenant(settings)
    async with aiohttp.ClientSession() as session:
        portal = Portal(session, base_url(server), tenant.portal_key)
        device = DeviceClient(
            base_url(server),
            session=session,
            authenticator=SoftAuthenticator.generate(origin=ORIGIN, rp_id="localhost"),
        )
        await device.enroll(await portal.enrollment_code("alice"))
        yield portal, device


async def _until_ready(portal: Portal, timeout: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if (await portal.call("GET", "/readyz", auth=False)).status == 200:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("gateway did not become ready again")


async def test_redis_down_gives_503_and_no_approval_then_recovers(
    own_redis: EmbeddedRedis, outage_portal: tuple[Portal, DeviceClient]
) -> None:
    """With Redis stopped: 503 backend_unavailable + Retry-After everywhere, nothing approved;
    with Redis back: the same processes serve again and the challenge can still be answered."""
    portal, device = outage_portal
    created = (await portal.create_challenge("alice")).body
    nonce = (await device.get_challenge(created["id"]))["nonce"]
    own_redis.stop()

    down = await portal.create_challenge("alice", resource="workday")
    assert down.status == 503
    assert down.content_type == "application/problem+json"
    assert down.body["code"] == "backend_unavailable"
    assert int(down.headers["Retry-After"]) >= 1
    ready = await portal.call("GET", "/readyz", auth=False)
    assert ready.status == 503
    with pytest.raises(DeviceApiError) as caught:
        await device.respond(created["id"], "approve", number=created["number"], nonce=nonce)
    assert caught.value.status == 503

    own_redis.start()
    await _until_ready(portal)
    still = (await portal.call("GET", f"/v1/challenges/{created['id']}")).body
    assert still["status"] == "pending"
    answer = await device.respond(created["id"], "approve", number=created["number"], nonce=nonce)
    assert answer["status"] == "approved"
