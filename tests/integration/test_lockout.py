"""Failed TOTP attempts, the lock at the limit and the admin unlock (SPEC §5)."""

from __future__ import annotations

import asyncio
from collections import Counter

from pusher.worker import Worker
from tests.conftest import TestClock
from tests.integration.audit import settled_events, wait_for_events
from tests.integration.conftest import Enroll
from tests.integration.totp_flow import active_totp, code_at, verify
from tests.portal import Portal


def wrong_code(secret: str, clock: TestClock) -> str:
    """A well-formed code that matches none of the steps in reach."""
    valid = {code_at(secret, clock, s) for s in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


async def test_parallel_wrong_codes_lock_with_an_exact_count(
    portal: Portal, admin: Portal, clock: TestClock, worker: Worker
) -> None:
    """300 concurrent wrong codes: exactly 5 are counted (4..0 left), the rest get 423."""
    secret = await active_totp(portal, "alice", clock)
    wrong = wrong_code(secret, clock)
    results = await asyncio.gather(*(verify(portal, "alice", wrong) for _ in range(300)))
    counted = sorted(body["attempts_remaining"] for status, body in results if status == 422)
    assert counted == [0, 1, 2, 3, 4]
    assert Counter(status for status, _ in results) == {422: 5, 423: 295}
    assert (await verify(portal, "alice", code_at(secret, clock)))[0] == 423
    await wait_for_events(admin, "user.locked")
    types = Counter(e["type"] for e in await settled_events(admin))
    assert (types["totp.failed"], types["user.locked"], types["totp.verified"]) == (5, 1, 0)


async def test_the_nth_failure_locks_for_lockout_seconds(
    portal: Portal, admin: Portal, clock: TestClock, enroll: Enroll
) -> None:
    """With 3 attempts the 3rd failure says 0 left; then 423 with Retry-After, also for pushes."""
    await admin.call("PATCH", "/v1/policy", {"totp_max_attempts": 3, "lockout_seconds": 600})
    secret = await active_totp(portal, "alice", clock)
    wrong = wrong_code(secret, clock)
    remaining = [(await verify(portal, "alice", wrong))[1]["attempts_remaining"] for _ in range(3)]
    assert remaining == [2, 1, 0]
    locked = await portal.call("POST", "/v1/users/alice/totp/verify", {"code": wrong})
    assert (locked.status, locked.body["code"]) == (423, "user_locked")
    assert 590 <= int(locked.headers["Retry-After"]) <= 600
    assert (await portal.call("GET", "/v1/users/alice")).body["mfa"]["state"] == "locked"
    await enroll("alice")
    push = await portal.create_challenge("alice")
    assert (push.status, push.body["code"]) == (423, "user_locked")


async def test_admins_get_at_most_five_attempts(
    portal: Portal, admin: Portal, clock: TestClock
) -> None:
    """With a policy of 10, an admin user locks at the 5th failure, a plain user has 9 left."""
    await admin.call("PATCH", "/v1/policy", {"totp_max_attempts": 10})
    await portal.call("PUT", "/v1/users/root", {"role": "admin"})
    root = await active_totp(portal, "root", clock)
    wrong = wrong_code(root, clock)
    remaining = [(await verify(portal, "root", wrong))[1]["attempts_remaining"] for _ in range(5)]
    assert remaining == [4, 3, 2, 1, 0]
    assert (await verify(portal, "root", wrong))[0] == 423
    bob = await active_totp(portal, "bob", clock)
    assert (await verify(portal, "bob", wrong_code(bob, clock)))[1]["attempts_remaining"] == 9


async def test_a_timed_lock_lifts_by_itself_with_fresh_attempts(
    portal: Portal, admin: Portal, clock: TestClock
) -> None:
    """After lockout_seconds the user may try again, with the full number of attempts."""
    await admin.call("PATCH", "/v1/policy", {"totp_max_attempts": 2, "lockout_seconds": 60})
    secret = await active_totp(portal, "alice", clock)
    for _ in range(2):
        await verify(portal, "alice", wrong_code(secret, clock))
    assert (await verify(portal, "alice", code_at(secret, clock)))[0] == 423
    clock.advance(61)
    assert (await verify(portal, "alice", wrong_code(secret, clock)))[1]["attempts_remaining"] == 1
    assert await verify(portal, "alice", code_at(secret, clock)) == (200, {"result": "allow"})


async def test_a_success_resets_the_failure_count(portal: Portal, clock: TestClock) -> None:
    """Two failures, a success, then a failure: the user has 4 attempts left again."""
    secret = await active_totp(portal, "alice", clock)
    wrong = wrong_code(secret, clock)
    await verify(portal, "alice", wrong)
    assert (await verify(portal, "alice", wrong))[1]["attempts_remaining"] == 3
    assert (await verify(portal, "alice", code_at(secret, clock)))[0] == 200
    assert (await verify(portal, "alice", wrong))[1]["attempts_remaining"] == 4


async def test_zero_lockout_holds_until_an_admin_unlocks(
    portal: Portal, admin: Portal, clock: TestClock, worker: Worker
) -> None:
    """lockout_seconds 0 locks with no Retry-After, even a day later; only admin unlock lifts it."""
    await admin.call("PATCH", "/v1/policy", {"totp_max_attempts": 1, "lockout_seconds": 0})
    secret = await active_totp(portal, "alice", clock)
    assert (await verify(portal, "alice", wrong_code(secret, clock)))[1]["attempts_remaining"] == 0
    clock.advance(86400)
    locked = await portal.call("POST", "/v1/users/alice/totp/verify", {"code": "123456"})
    assert locked.status == 423
    assert "Retry-After" not in locked.headers
    assert (await portal.call("POST", "/v1/users/alice/unlock")).status == 403
    assert (await admin.call("POST", "/v1/users/alice/unlock")).status == 204
    assert (await portal.call("GET", "/v1/users/alice")).body["mfa"]["state"] == "enrolled"
    assert await verify(portal, "alice", code_at(secret, clock)) == (200, {"result": "allow"})
    unlocked = await wait_for_events(admin, "user.unlocked")
    assert unlocked[0]["user_id"] == "alice"
    assert unlocked[0]["data"]["was_locked"] is True


async def test_unlocking_an_unknown_user_is_not_found(admin: Portal) -> None:
    """POST unlock for an id that was never seen answers 404."""
    assert (await admin.call("POST", "/v1/users/ghost/unlock")).status == 404
