"""The worker loop without Apple or Google: job stream -> in-app channel -> device websocket."""

from __future__ import annotations

import asyncio

from pusher.worker import Worker
from tests.integration.conftest import Enroll
from tests.portal import Portal


async def test_worker_delivers_challenge_to_device_websocket_and_portal_sees_push_sent(
    portal: Portal, enroll: Enroll, worker: Worker
) -> None:
    """A created challenge reaches the open device websocket and the portal hears push_sent."""
    device = await enroll("alice")
    async with device.websocket() as socket:
        snapshot = await asyncio.wait_for(socket.__anext__(), 5)
        assert snapshot == {"type": "snapshot", "items": []}
        created = (await portal.create_challenge("alice")).body
        waiter = asyncio.create_task(portal.wait_result(created["id"]))
        pushed = await asyncio.wait_for(socket.__anext__(), 5)
        assert pushed["type"] == "challenge"
        assert pushed["challenge"]["id"] == created["id"]
        assert "number" not in pushed["challenge"]
        await device.ack(created["id"])
        await device.respond(created["id"], "approve", number=created["number"])
        ended = await asyncio.wait_for(socket.__anext__(), 5)
        assert ended == {"type": "ended", "id": created["id"], "status": "approved"}
    messages = await asyncio.wait_for(waiter, 10)
    kinds = [m["type"] for m in messages]
    assert kinds[0] == "snapshot" and kinds[-1] == "result"
    assert "delivered" in kinds
    final = messages[-1]["challenge"]
    assert final["status"] == "approved"
    assert final["push"]["sent_at"] is not None
    assert final["push"]["delivered_at"] is not None


async def test_expired_challenge_is_swept_and_reads_expired(
    admin: Portal, portal: Portal, enroll: Enroll, worker: Worker, clock: object
) -> None:
    """After the TTL the worker's sweep records the expiry; the portal reads status expired."""
    await admin.call("PATCH", "/v1/policy", {"push_ttl_seconds": 15})
    await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    clock.advance(16)  # type: ignore[attr-defined]
    for _ in range(50):
        view = (await portal.call("GET", f"/v1/challenges/{created['id']}")).body
        if view["decided_at"]:
            break
        await asyncio.sleep(0.1)
    assert view["status"] == "expired"
    assert view["reason"] == "ttl"
    assert view["decided_at"] is not None
