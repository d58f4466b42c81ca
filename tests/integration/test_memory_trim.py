"""After many websockets closed, the gateway hands free heap memory back to the OS."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestServer

from gateway.memory import AllocatorTrim
from gateway.services import SERVICES
from tests.integration.conftest import Enroll
from tests.portal import Portal


async def test_closed_websockets_lead_to_one_allocator_trim(
    server: TestServer, portal: Portal, enroll: Enroll
) -> None:
    """Each closed portal websocket is counted; once the threshold is reached the allocator
    is trimmed once and the count starts again (glibc: malloc_trim)."""
    svc = server.app[SERVICES]
    svc.allocator = AllocatorTrim(threshold=3, quiet_seconds=0)
    assert svc.allocator.available
    device = await enroll("alice")
    for resource in ("a", "b", "c"):
        created = (await portal.create_challenge("alice", resource=resource)).body
        await device.respond(created["id"], "deny")
        messages = await portal.wait_result(created["id"], watch_token=created["watch_token"])
        assert messages[-1]["type"] == "result"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5  # the server counts once its side of the close completed
    while svc.allocator.closed_since_trim < 3 and loop.time() < deadline:
        await asyncio.sleep(0.01)
    assert svc.allocator.closed_since_trim == 3
    assert await svc.allocator.trim_if_due() is True
    assert (svc.allocator.trims, svc.allocator.closed_since_trim) == (1, 0)
    assert await svc.allocator.trim_if_due() is False
