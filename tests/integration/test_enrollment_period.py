"""The enrollment period (SPEC §6): start, days remaining, reminder, expiry, extension."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from pusher.worker import Worker
from pushgate.settings import Settings
from tests.conftest import TestClock
from tests.integration.audit import settled_events, wait_for_events
from tests.integration.conftest import Enroll
from tests.integration.totp_flow import active_totp, code_at, mid_step, start_totp
from tests.portal import Portal

DAY = 86400
StartWorkers = Callable[[int], Awaitable[list[Worker]]]


@pytest.fixture
async def start_workers(settings: Settings, clock: TestClock) -> AsyncIterator[StartWorkers]:
    """Start ``n`` workers that share the injected clock; all stop at the end."""
    started: list[Worker] = []

    async def _start(n: int) -> list[Worker]:
        for i in range(n):
            worker = Worker(settings, clock=clock, name=f"w{i}", sweep_interval=0.05)
            await worker.start()
            started.append(worker)
        return started

    yield _start
    for worker in started:
        await worker.stop(grace=1)


async def _mfa(portal: Portal, user_id: str) -> dict[str, object]:
    reply = await portal.call("GET", f"/v1/users/{user_id}")
    assert reply.status == 200, reply.body
    mfa: dict[str, object] = reply.body["mfa"]
    return mfa


async def test_requiring_mfa_starts_the_period_with_days_remaining(
    portal: Portal, clock: TestClock
) -> None:
    """A new user with MFA required and no factor is in grace with 7 days, then 1 on day 7."""
    await portal.call("PUT", "/v1/users/alice", {"mfa_required": True})
    mfa = await _mfa(portal, "alice")
    assert (mfa["state"], mfa["days_remaining"]) == ("grace", 7)
    assert mfa["enrollment_deadline"] is not None
    clock.advance(6 * DAY + 3600)
    assert (await _mfa(portal, "alice"))["days_remaining"] == 1


async def test_requiring_mfa_again_later_starts_a_new_period(
    portal: Portal, clock: TestClock
) -> None:
    """false -> true starts the period at that moment, not at creation."""
    await portal.call("PUT", "/v1/users/alice", {"mfa_required": False})
    assert (await _mfa(portal, "alice"))["state"] == "grace"
    clock.advance(30 * DAY)
    await portal.call("PUT", "/v1/users/alice", {"mfa_required": True})
    mfa = await _mfa(portal, "alice")
    assert (mfa["state"], mfa["days_remaining"]) == ("grace", 7)
    await portal.call("PUT", "/v1/users/alice", {"mfa_required": True})
    assert (await _mfa(portal, "alice"))["days_remaining"] == 7


async def test_reminder_and_expiry_are_emitted_once_with_two_workers(
    portal: Portal, admin: Portal, enroll: Enroll, clock: TestClock, start_workers: StartWorkers
) -> None:
    """Two workers race on the index; each of reminder and expiry is emitted exactly once."""
    await start_workers(2)
    await portal.call("PUT", "/v1/users/alice", {"mfa_required": True})
    await portal.call("PUT", "/v1/users/enrolled", {"mfa_required": True})
    await enroll("enrolled")
    clock.advance(6 * DAY + 60)
    reminders = await wait_for_events(admin, "enrollment.reminder")
    assert [e["user_id"] for e in reminders] == ["alice"]
    clock.advance(DAY)
    await wait_for_events(admin, "enrollment.expired")
    events = await settled_events(admin)
    assert [e["user_id"] for e in events if e["type"] == "enrollment.reminder"] == ["alice"]
    assert [e["user_id"] for e in events if e["type"] == "enrollment.expired"] == ["alice"]


async def test_an_expired_user_is_locked_until_an_admin_extends(
    portal: Portal, admin: Portal, clock: TestClock
) -> None:
    """After the deadline: state expired, 423 on pushes; an extension of 7 days reopens it."""
    await portal.call("PUT", "/v1/users/alice", {"mfa_required": True})
    clock.advance(7 * DAY + 1)
    mfa = await _mfa(portal, "alice")
    assert (mfa["state"], mfa["days_remaining"]) == ("expired", 0)
    push = await portal.create_challenge("alice")
    assert (push.status, push.body["code"]) == (423, "user_locked")
    assert "Retry-After" not in push.headers
    assert (
        await portal.call("POST", "/v1/users/alice/enrollment-period", {"days": 7})
    ).status == 403
    extended = await admin.call("POST", "/v1/users/alice/enrollment-period", {"days": 7})
    assert extended.status == 200, extended.body
    assert (extended.body["mfa"]["state"], extended.body["mfa"]["days_remaining"]) == ("grace", 7)
    push = await portal.create_challenge("alice")
    assert (push.status, push.body["code"]) == (409, "no_push_device")


async def test_extension_adds_to_a_deadline_that_has_not_passed(
    portal: Portal, admin: Portal, clock: TestClock
) -> None:
    """Three days into a 7-day period, +7 days leaves 11 days."""
    await portal.call("PUT", "/v1/users/alice", {"mfa_required": True})
    clock.advance(3 * DAY)
    extended = await admin.call("POST", "/v1/users/alice/enrollment-period", {"days": 7})
    assert extended.body["mfa"]["days_remaining"] == 11
    bad = await admin.call("POST", "/v1/users/alice/enrollment-period", {"days": 0})
    assert (bad.status, bad.body["errors"][0]["field"]) == (422, "days")
    missing = await admin.call("POST", "/v1/users/ghost/enrollment-period", {"days": 7})
    assert missing.status == 404


async def test_removing_the_requirement_ends_the_lock(portal: Portal, clock: TestClock) -> None:
    """An expired user whose MFA requirement is removed is no longer locked."""
    await portal.call("PUT", "/v1/users/alice", {"mfa_required": True})
    clock.advance(8 * DAY)
    assert (await _mfa(portal, "alice"))["state"] == "expired"
    await portal.call("PUT", "/v1/users/alice", {"mfa_required": False})
    assert (await _mfa(portal, "alice"))["state"] == "grace"
    push = await portal.create_challenge("alice")
    assert push.body["code"] == "no_push_device"


async def test_an_expired_user_may_still_be_enrolled_and_then_signs_in(
    portal: Portal, clock: TestClock
) -> None:
    """Expiry locks sign-in, not enrollment: a confirmed TOTP key makes the user enrolled."""
    await portal.call("PUT", "/v1/users/alice", {"mfa_required": True})
    clock.advance(8 * DAY)
    mid_step(clock)
    secret = await start_totp(portal, "alice")
    codes = [code_at(secret, clock), code_at(secret, clock, 1)]
    assert (
        await portal.call("POST", "/v1/users/alice/totp/confirm", {"codes": codes})
    ).status == 200
    assert (await _mfa(portal, "alice"))["state"] == "enrolled"
    clock.advance(90)
    verified = await portal.call(
        "POST", "/v1/users/alice/totp/verify", {"code": code_at(secret, clock)}
    )
    assert verified.status == 200


async def test_an_expired_user_without_a_key_gets_423_on_verify(
    portal: Portal, admin: Portal, clock: TestClock
) -> None:
    """Once the admin removed the only factor after the deadline, verify answers user_locked."""
    await portal.call("PUT", "/v1/users/alice", {"mfa_required": True})
    secret = await active_totp(portal, "alice", clock)
    clock.advance(8 * DAY)
    await admin.call("DELETE", "/v1/users/alice/totp")
    reply = await portal.call(
        "POST", "/v1/users/alice/totp/verify", {"code": code_at(secret, clock)}
    )
    assert (reply.status, reply.body["code"]) == (423, "user_locked")
