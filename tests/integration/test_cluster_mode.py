"""The same code on a three-node Redis Cluster: every script in one slot, sharded pub/sub."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from pusher.worker import Worker
from pushgate.devicekit.authenticator import SoftAuthenticator
from pushgate.devicekit.client import DeviceClient
from pushgate.embedded import EmbeddedRedis
from pushgate.settings import Settings
from tests.cluster import embedded_cluster
from tests.conftest import ORIGIN, TestClock, make_settings
from tests.integration.conftest import base_url, make_tenant
from tests.portal import Portal


@pytest.fixture(scope="module")
def cluster_nodes() -> Iterator[list[EmbeddedRedis]]:
    with embedded_cluster() as nodes:
        yield nodes


@pytest.fixture
def cluster_settings(cluster_nodes: list[EmbeddedRedis]) -> Settings:
    return make_settings(cluster_nodes[0].url, redis_cluster=True, shards=8, redis_wait_replicas=0)


@pytest.fixture
async def cluster_stack(
    cluster_settings: Settings,
    clock: TestClock,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> AsyncIterator[tuple[Portal, DeviceClient, Worker]]:
    server = await aiohttp_server(create_app(cluster_settings, clock=clock))
    worker = Worker(cluster_settings, clock=clock, sweep_interval=0.1)
    await worker.start()
    tenant = await make_tenant(cluster_settings)
    try:
        async with aiohttp.ClientSession() as session:
            portal = Portal(session, base_url(server), tenant.portal_key)
            device = DeviceClient(
                base_url(server),
                session=session,
                authenticator=SoftAuthenticator.generate(origin=ORIGIN, rp_id="localhost"),
            )
            await device.enroll(await portal.enrollment_code("alice"))
            yield portal, device, worker
    finally:
        await worker.stop(grace=2)


async def test_push_approval_works_on_a_cluster(
    cluster_stack: tuple[Portal, DeviceClient, Worker],
) -> None:
    """Create, in-app delivery, signed approval and the portal's websocket result on a Cluster."""
    portal, device, _ = cluster_stack
    async with device.websocket() as socket:
        snapshot = await asyncio.wait_for(socket.__anext__(), 5)
        assert snapshot["type"] == "snapshot"
        created = (await portal.create_challenge("alice")).body
        waiter = asyncio.create_task(portal.wait_result(created["id"]))
        pushed = await asyncio.wait_for(socket.__anext__(), 10)
        assert pushed["challenge"]["id"] == created["id"]
        await device.respond(created["id"], "approve", number=created["number"])
    messages = await asyncio.wait_for(waiter, 10)
    assert messages[-1]["challenge"]["status"] == "approved"
    assert messages[-1]["challenge"]["push"]["sent_at"] is not None


async def test_dedupe_caps_and_isolation_hold_on_a_cluster(
    cluster_stack: tuple[Portal, DeviceClient, Worker], cluster_settings: Settings
) -> None:
    """Dedupe and the throttle answer come from the same scripts on a Cluster."""
    portal, device, _ = cluster_stack
    first = await portal.create_challenge("alice", resource="cluster-dedupe")
    second = await portal.create_challenge("alice", resource="cluster-dedupe")
    assert (first.status, second.status) == (201, 200)
    await device.respond(first.body["id"], "deny")
    third = await portal.create_challenge("alice", resource="cluster-dedupe")
    assert third.status == 429
    other = await make_tenant(cluster_settings, "globex")
    foreign = Portal(portal.session, portal.base_url, other.portal_key)
    assert (await foreign.call("GET", f"/v1/challenges/{first.body['id']}")).status == 404
