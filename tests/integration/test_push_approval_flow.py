"""The push path end to end: create, deliver to the device, answer, portal sees the result."""

from __future__ import annotations

import json

from aiohttp import WSCloseCode, WSMsgType

from tests.integration.conftest import Enroll
from tests.portal import Portal


async def test_enrolled_device_sees_challenge_without_number(
    portal: Portal, enroll: Enroll
) -> None:
    """A device lists the pending challenge with app name and location but never the number."""
    device = await enroll("alice")
    created = await portal.create_challenge("alice")
    assert created.status == 201, created.body
    assert created.body["number"] is not None and len(created.body["number"]) == 2
    items = await device.list_challenges()
    assert [i["id"] for i in items] == [created.body["id"]]
    assert items[0]["app_name"] == "Salesforce"
    assert items[0]["context"]["location"] == "Berlin, DE"
    assert "number" not in items[0]


async def test_approve_with_number_reaches_portal_websocket(portal: Portal, enroll: Enroll) -> None:
    """Approving with the right number ends the challenge; a websocket that saw the pending
    snapshot first gets the device's read (``seen``) and then the result live over pub/sub,
    and a normal close. (Without pub/sub the socket would only re-read at the deadline and
    send the result alone.)"""
    device = await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    async with portal.session.ws_connect(
        portal.ws_url(created["id"]), headers=portal.headers
    ) as ws:
        snapshot = await ws.receive_json(timeout=10)
        assert snapshot["type"] == "snapshot"
        assert snapshot["challenge"]["status"] == "pending"
        assert snapshot["challenge"]["push"]["seen_at"] is None
        answer = await device.respond(created["id"], "approve", number=created["number"])
        assert answer["status"] == "approved"
        messages = [json.loads(msg.data) async for msg in ws if msg.type == WSMsgType.TEXT]
    assert [m["type"] for m in messages] == ["seen", "result"]
    assert messages[-1]["challenge"]["status"] == "approved"
    assert messages[-1]["challenge"]["method"] == "push"
    assert ws.close_code == WSCloseCode.OK
