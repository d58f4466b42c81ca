"""Two gateway replicas on one Redis, and a waiter whose subscription breaks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from gateway.services import SERVICES
from pushgate.settings import Settings
from tests.conftest import TestClock
from tests.integration.conftest import Enroll, Tenant, base_url
from tests.portal import Portal


async def test_waiter_on_replica_a_gets_approval_posted_to_replica_b(
    settings: Settings,
    clock: TestClock,
    tenant: Tenant,
    portal: Portal,
    enroll: Enroll,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> None:
    """Results cross gateway processes through Redis pub/sub."""
    replica_b = await aiohttp_server(create_app(settings, clock=clock))
    device = await enroll("alice")  # enrolled through replica A
    created = (await portal.create_challenge("alice")).body
    waiter = asyncio.create_task(portal.wait_result(created["id"]))
    await asyncio.sleep(0.2)
    device.base_url = base_url(replica_b)  # the phone's request lands on replica B
    await device.respond(created["id"], "approve", number=created["number"])
    messages = await asyncio.wait_for(waiter, 10)
    assert messages[-1]["challenge"]["status"] == "approved"


async def test_waiter_resubscribes_and_rereads_after_pubsub_connection_is_killed(
    server: TestServer, portal: Portal, enroll: Enroll, settings: Settings
) -> None:
    """Killing the pub/sub connection loses the live message, but the waiter re-reads the truth."""
    device = await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    waiter = asyncio.create_task(portal.wait_result(created["id"]))
    await asyncio.sleep(0.2)
    hub = server.app[SERVICES].hub
    admin = aioredis.Redis.from_url(settings.redis_url or "")
    try:
        await admin.client_kill_filter(_type="pubsub")
        # Answer while the hub is reconnecting: the PUBLISH may reach nobody.
        await device.respond(created["id"], "approve", number=created["number"])
        messages = await asyncio.wait_for(waiter, 10)
    finally:
        await admin.aclose()
    assert messages[-1]["challenge"]["status"] == "approved"
    assert hub.reconnects >= 1


async def test_hub_closes_promptly_even_while_still_connecting(settings: Settings) -> None:
    """Closing a hub right after starting it does not hang on the half-open connection."""
    from gateway.waiters import Hub

    client = aioredis.Redis.from_url(settings.redis_url or "", decode_responses=True)
    hub = Hub(client)
    await hub.start()
    await asyncio.sleep(0.001)
    await asyncio.wait_for(hub.close(), 3)
    await client.aclose()
