"""Push fatigue caps and the fraud block through HTTP (SPEC §3, §7)."""

from __future__ import annotations

from pusher.worker import Worker
from tests.conftest import TestClock
from tests.integration.audit import wait_for_events
from tests.integration.conftest import Enroll
from tests.integration.totp_flow import active_totp, code_at
from tests.portal import Portal


async def _cancel(portal: Portal, challenge_id: str) -> None:
    assert (await portal.call("DELETE", f"/v1/challenges/{challenge_id}")).status == 200


async def test_window_cap_throttles_the_next_push_with_retry_after(
    portal: Portal, admin: Portal, enroll: Enroll, clock: TestClock, worker: Worker
) -> None:
    """With 2 pushes per 600 s the third is 429 push_throttled until the oldest leaves."""
    await admin.call("PATCH", "/v1/policy", {"max_pushes_per_window": 2, "dedupe_seconds": 0})
    await enroll("alice")
    for resource in ("a", "b"):
        assert (await portal.create_challenge("alice", resource=resource)).status == 201
    clock.advance(100)
    throttled = await portal.create_challenge("alice", resource="c")
    assert (throttled.status, throttled.body["code"]) == (429, "push_throttled")
    assert 495 <= int(throttled.headers["Retry-After"]) <= 500
    clock.advance(501)
    assert (await portal.create_challenge("alice", resource="c")).status == 201
    events = await wait_for_events(admin, "challenge.throttled")
    assert events[0]["data"]["reason"] == "max_pushes_per_window"


async def test_unanswered_cap_holds_until_an_approval_and_totp_fallback_counts(
    portal: Portal, admin: Portal, enroll: Enroll, clock: TestClock
) -> None:
    """After 3 unanswered pushes the 4th is 429; approving the 3rd by TOTP lifts the cap."""
    await admin.call(
        "PATCH",
        "/v1/policy",
        {"max_unanswered_pushes": 3, "max_pushes_per_window": 100, "dedupe_seconds": 0},
    )
    await enroll("alice")
    secret = await active_totp(portal, "alice", clock)
    first = (await portal.create_challenge("alice", resource="a")).body
    await _cancel(portal, first["id"])
    second = (await portal.create_challenge("alice", resource="b")).body
    await _cancel(portal, second["id"])
    third = (await portal.create_challenge("alice", resource="c")).body
    refused = await portal.create_challenge("alice", resource="d")
    assert (refused.status, refused.body["code"]) == (429, "push_throttled")
    approved = await portal.call(
        "POST", f"/v1/challenges/{third['id']}/totp", {"code": code_at(secret, clock)}
    )
    assert approved.body["status"] == "approved"
    assert (await portal.create_challenge("alice", resource="d")).status == 201


async def test_fraud_report_blocks_pushes_for_fraud_block_seconds(
    portal: Portal, admin: Portal, enroll: Enroll, clock: TestClock, worker: Worker
) -> None:
    """After 'this wasn't me' pushes get 423 push_blocked with Retry-After until the block ends."""
    await admin.call("PATCH", "/v1/policy", {"fraud_block_seconds": 1800, "dedupe_seconds": 0})
    device = await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    assert (await device.respond(created["id"], "fraud"))["status"] == "fraud"
    clock.advance(600)
    blocked = await portal.create_challenge("alice")
    assert (blocked.status, blocked.body["code"]) == (423, "push_blocked")
    assert 1195 <= int(blocked.headers["Retry-After"]) <= 1200
    clock.advance(1201)
    assert (await portal.create_challenge("alice")).status == 201
    reported = await wait_for_events(admin, "challenge.fraud_reported")
    assert reported[0]["challenge_id"] == created["id"]
    throttled = await wait_for_events(admin, "challenge.throttled")
    assert throttled[0]["data"]["reason"] == "fraud_block"


async def test_zero_fraud_block_seconds_blocks_nothing(
    portal: Portal, admin: Portal, enroll: Enroll
) -> None:
    """With fraud_block_seconds 0 a fraud report ends the challenge but blocks no push."""
    await admin.call("PATCH", "/v1/policy", {"fraud_block_seconds": 0, "dedupe_seconds": 0})
    device = await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    await device.respond(created["id"], "fraud")
    assert (await portal.create_challenge("alice")).status == 201


async def test_admin_unlock_lifts_a_fraud_block(
    portal: Portal, admin: Portal, enroll: Enroll
) -> None:
    """An admin who cleared the report unlocks the user, and pushes flow again."""
    await admin.call("PATCH", "/v1/policy", {"dedupe_seconds": 0})
    device = await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    await device.respond(created["id"], "fraud")
    assert (await portal.create_challenge("alice")).status == 423
    assert (await admin.call("POST", "/v1/users/alice/unlock")).status == 204
    assert (await portal.create_challenge("alice")).status == 201
