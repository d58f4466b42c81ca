"""Challenge lifecycle through HTTP and websockets: answers, dedupe, expiry, cancel, races."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer
from redis.exceptions import ConnectionError as RedisConnectionError

from approvals.ids import shard_of
from approvals.store import keys
from gateway.services import SERVICES
from pusher.worker import Worker
from pushgate.devicekit.answers import sign_response_body
from pushgate.devicekit.errors import DeviceApiError
from pushgate.settings import Settings
from tests.conftest import TestClock
from tests.integration.conftest import Enroll
from tests.portal import Portal


async def test_deny_ends_challenge_as_denied_by_user(portal: Portal, enroll: Enroll) -> None:
    """'I cancelled' ends the challenge as denied with reason user_denied."""
    device = await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    answer = await device.respond(created["id"], "deny")
    assert answer["status"] == "denied"
    assert answer["reason"] == "user_denied"


async def test_fraud_report_ends_challenge_and_blocks_pushes(
    portal: Portal, enroll: Enroll
) -> None:
    """'This wasn't me' ends the challenge as fraud and blocks new pushes (423 push_blocked)."""
    device = await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    answer = await device.respond(created["id"], "fraud")
    assert answer["status"] == "fraud"
    assert answer["reason"] == "fraud_reported"
    blocked = await portal.create_challenge("alice", resource="other")
    assert blocked.status == 423
    assert blocked.body["code"] == "push_blocked"
    assert int(blocked.headers["Retry-After"]) > 0


async def test_wrong_number_ends_challenge_as_number_mismatch(
    portal: Portal, enroll: Enroll
) -> None:
    """Approving with a wrong number answers 200 with status denied, reason number_mismatch."""
    device = await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    wrong = "10" if created["number"] != "10" else "11"
    answer = await device.respond(created["id"], "approve", number=wrong)
    assert answer["status"] == "denied"
    assert answer["reason"] == "number_mismatch"


async def test_number_matching_off_approves_without_number(portal: Portal, enroll: Enroll) -> None:
    """With number_matching false the challenge has no number and approve needs none."""
    device = await enroll("alice")
    created = (await portal.create_challenge("alice", number_matching=False)).body
    assert created["number"] is None
    answer = await device.respond(created["id"], "approve")
    assert answer["status"] == "approved"


async def test_answer_after_decision_is_409(portal: Portal, enroll: Enroll) -> None:
    """A second answer after the first valid one gets 409 challenge_already_decided."""
    device = await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    await device.respond(created["id"], "deny")
    with pytest.raises(DeviceApiError) as caught:
        await device.respond(created["id"], "approve", number=created["number"])
    assert caught.value.status == 409
    assert caught.value.code == "challenge_already_decided"


async def test_answer_after_expiry_is_410_and_result_is_expired(
    portal: Portal, enroll: Enroll, clock: TestClock
) -> None:
    """After the TTL an answer gets 410 challenge_expired and the challenge reads expired."""
    device = await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    view = await device.get_challenge(created["id"])
    clock.advance(61)
    with pytest.raises(DeviceApiError) as caught:
        await device.respond(
            created["id"], "approve", number=created["number"], nonce=view["nonce"]
        )
    assert caught.value.status == 410
    final = (await portal.call("GET", f"/v1/challenges/{created['id']}")).body
    assert final["status"] == "expired"
    assert final["reason"] == "ttl"


async def test_portal_websocket_gets_expired_result_when_ttl_passes(
    portal: Portal, enroll: Enroll, worker: Worker, clock: TestClock
) -> None:
    """A waiting websocket receives result=expired once the TTL has passed, then closes."""
    await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    waiter = asyncio.create_task(portal.wait_result(created["id"]))
    await asyncio.sleep(0.2)
    clock.advance(61)  # the worker's sweep records the expiry and wakes the waiter
    messages = await asyncio.wait_for(waiter, 10)
    assert messages[-1]["type"] == "result"
    assert messages[-1]["challenge"]["status"] == "expired"


async def test_portal_websocket_is_told_the_result_from_the_end_notice_while_reads_fail(
    server: TestServer, portal: Portal, enroll: Enroll
) -> None:
    """The end notice carries the record as it ended: a waiting socket tells the result
    without reading the record again (here reading the ended record fails)."""
    device = await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    svc = server.app[SERVICES]
    async with portal.session.ws_connect(
        portal.ws_url(created["id"], None), headers=portal.headers
    ) as ws:
        snapshot = await ws.receive_json()
        assert snapshot["type"] == "snapshot"

        read = svc.challenges.get

        async def pending_only(challenge_id: str) -> Any:
            record = await read(challenge_id)
            if record is not None and record.status != "pending":
                raise RedisConnectionError("reads of the ended record fail")
            return record

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(svc.challenges, "get", pending_only)
            await device.respond(created["id"], "approve", number=created["number"])
            result = await asyncio.wait_for(ws.receive_json(), 10)
            while result["type"] != "result":  # progress first (the device read it: seen)
                result = await asyncio.wait_for(ws.receive_json(), 10)
    assert result["type"] == "result"
    assert result["challenge"]["status"] == "approved"
    assert result["challenge"]["id"] == created["id"]


async def test_texts_reach_the_record_exactly_as_sent(portal: Portal, enroll: Enroll) -> None:
    """App name and context (quotes, backslashes, non-ASCII, emoji) are stored byte for byte:
    the created answer and a later read of the record show them as sent."""
    await enroll("alice")
    app_name = 'Sales "force" \\ Zürich 😀 \u2028'
    context = {"ip": "203.0.113.9", "location": "Düsseldorf, DE 🌧", "user_agent": 'A "b" \\ c'}
    created = (await portal.create_challenge("alice", app_name=app_name, context=context)).body
    read = (await portal.call("GET", f"/v1/challenges/{created['id']}")).body
    for view in (created, read):
        assert view["app_name"] == app_name
        assert view["context"] == context


async def test_pending_duplicate_is_deduplicated_without_new_push(
    portal: Portal, enroll: Enroll
) -> None:
    """A second create for the same user and resource while pending returns the same challenge."""
    await enroll("alice")
    first = await portal.create_challenge("alice")
    second = await portal.create_challenge("alice")
    assert first.status == 201 and second.status == 200
    assert second.body["id"] == first.body["id"]
    assert second.body["deduplicated"] is True
    assert second.body["number"] == first.body["number"]
    assert second.body["watch_token"] == first.body["watch_token"]


async def test_duplicate_of_a_pending_challenge_whose_record_vanished_is_created_anew(
    portal: Portal, enroll: Enroll, settings: Settings
) -> None:
    """A pending challenge whose record is gone (deleted, lost in a failover) is no challenge
    to deduplicate against: the next create for its resource makes a new one (201)."""
    await enroll("alice")
    first = (await portal.create_challenge("alice")).body
    shard = shard_of(first["id"], settings.shards)
    assert shard is not None
    client = aioredis.Redis.from_url(settings.redis_url or "", decode_responses=True)
    try:
        assert await client.delete(keys.challenge(shard, first["id"])) == 1
    finally:
        await client.aclose()
    again = await portal.create_challenge("alice")
    assert again.status == 201, again.body
    assert again.body["deduplicated"] is False
    assert again.body["id"] != first["id"]
    assert (await portal.call("GET", f"/v1/challenges/{again.body['id']}")).status == 200
    assert (await portal.create_challenge("alice")).body["id"] == again.body["id"]


async def test_create_after_ended_challenge_in_window_is_throttled(
    portal: Portal, enroll: Enroll
) -> None:
    """Within the dedupe window after an answer, a new create gets 429 with Retry-After."""
    device = await enroll("alice")
    first = (await portal.create_challenge("alice")).body
    await device.respond(first["id"], "deny")
    again = await portal.create_challenge("alice")
    assert again.status == 429
    assert again.body["code"] == "push_throttled"
    assert 1 <= int(again.headers["Retry-After"]) <= 60
    other = await portal.create_challenge("alice", resource="workday")
    assert other.status == 201


async def test_portal_cancel_ends_challenge(portal: Portal, enroll: Enroll) -> None:
    """DELETE cancels a pending challenge; the device's answer then gets 409."""
    device = await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    cancelled = await portal.call("DELETE", f"/v1/challenges/{created['id']}")
    assert cancelled.status == 200
    assert cancelled.body["status"] == "cancelled"
    assert cancelled.body["reason"] == "portal_cancelled"
    with pytest.raises(DeviceApiError) as caught:
        await device.respond(created["id"], "approve", number=created["number"])
    assert caught.value.status == 409


async def test_fifty_concurrent_answers_have_exactly_one_winner(
    portal: Portal, enroll: Enroll
) -> None:
    """50 signed answers race; exactly one gets 200 and every other one gets 409."""
    device = await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    nonce = (await device.get_challenge(created["id"]))["nonce"]
    assert device.authenticator is not None
    bodies = [
        sign_response_body(device.authenticator, nonce, "approve", created["number"])
        for _ in range(50)
    ]
    url = device.url(f"/v1/device/challenges/{created['id']}/response")

    async def post(body: dict[str, object]) -> int:
        async with device.session.post(url, json=body, headers=device.auth_headers()) as r:
            return r.status

    statuses = await asyncio.gather(*(post(b) for b in bodies))
    assert statuses.count(200) == 1
    assert statuses.count(409) == 49


async def test_signature_over_another_decision_is_rejected(portal: Portal, enroll: Enroll) -> None:
    """A signature made for 'deny' presented with decision 'approve' gets 422 webauthn_invalid."""
    device = await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    nonce = (await device.get_challenge(created["id"]))["nonce"]
    assert device.authenticator is not None
    body = sign_response_body(device.authenticator, nonce, "deny", None)
    body["decision"] = "approve"
    body["number"] = created["number"]
    url = device.url(f"/v1/device/challenges/{created['id']}/response")
    async with device.session.post(url, json=body, headers=device.auth_headers()) as r:
        assert r.status == 422
        assert (await r.json())["code"] == "webauthn_invalid"
    still = (await portal.call("GET", f"/v1/challenges/{created['id']}")).body
    assert still["status"] == "pending"


async def test_replayed_assertion_is_rejected(portal: Portal, enroll: Enroll) -> None:
    """Re-sending an assertion whose sign count did not grow is refused and changes nothing."""
    device = await enroll("alice")
    first = (await portal.create_challenge("alice")).body
    nonce = (await device.get_challenge(first["id"]))["nonce"]
    assert device.authenticator is not None
    old = sign_response_body(device.authenticator, nonce, "deny", None)
    await device.respond(first["id"], "approve", number=first["number"])
    second = (await portal.create_challenge("alice", resource="other")).body
    url = device.url(f"/v1/device/challenges/{second['id']}/response")
    async with device.session.post(url, json=old, headers=device.auth_headers()) as r:
        assert r.status == 422


async def test_wrong_device_secret_is_401(portal: Portal, enroll: Enroll) -> None:
    """A device presenting a wrong secret gets 401 unauthorized."""
    device = await enroll("alice")
    url = device.url("/v1/device/challenges")
    headers = {"Authorization": f"Device {device.device_id}.not-the-secret"}
    async with device.session.get(url, headers=headers) as r:
        assert r.status == 401
        assert (await r.json())["code"] == "unauthorized"


async def test_long_poll_returns_when_challenge_ends(portal: Portal, enroll: Enroll) -> None:
    """GET ?wait= holds until the device answers, then returns the final state."""
    device = await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    poll = asyncio.create_task(portal.call("GET", f"/v1/challenges/{created['id']}?wait=20"))
    await asyncio.sleep(0.3)
    assert not poll.done()
    await device.respond(created["id"], "approve", number=created["number"])
    reply = await asyncio.wait_for(poll, 10)
    assert reply.status == 200
    assert reply.body["status"] == "approved"


async def test_long_poll_rejects_wait_above_limit(portal: Portal, enroll: Enroll) -> None:
    """wait above 55 seconds is a 422 invalid_request naming the field."""
    await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    reply = await portal.call("GET", f"/v1/challenges/{created['id']}?wait=56")
    assert reply.status == 422
    assert reply.body["errors"][0]["field"] == "wait"


async def test_seen_and_delivered_reach_portal_websocket(portal: Portal, enroll: Enroll) -> None:
    """Device ack and first read show up on the portal websocket as delivered and seen."""
    device = await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    waiter = asyncio.create_task(portal.wait_result(created["id"]))
    await asyncio.sleep(0.2)
    await device.ack(created["id"])
    await device.get_challenge(created["id"])
    await device.respond(created["id"], "deny")
    kinds = [m["type"] for m in await asyncio.wait_for(waiter, 10)]
    assert kinds == ["snapshot", "delivered", "seen", "result"]
