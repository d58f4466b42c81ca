"""TOTP helpers for integration tests: an authenticator app's side of the flow."""

from __future__ import annotations

from approvals.totp import STEP_SECONDS, current_code
from tests.conftest import TestClock
from tests.portal import Portal


def mid_step(clock: TestClock) -> None:
    """Move the clock to the middle of a 30 s step, so a test's codes keep their step."""
    into = clock() % STEP_SECONDS
    clock.advance((STEP_SECONDS / 2 - into) % STEP_SECONDS)


def code_at(secret: str, clock: TestClock, steps: int = 0) -> str:
    """The code the app shows ``steps`` steps from the clock's now."""
    return current_code(secret, clock() + steps * STEP_SECONDS)


async def start_totp(portal: Portal, user_id: str) -> str:
    """Start an enrollment; returns the manual-entry secret."""
    reply = await portal.call("POST", f"/v1/users/{user_id}/totp")
    assert reply.status == 201, reply.body
    return str(reply.body["secret"])


async def active_totp(portal: Portal, user_id: str, clock: TestClock) -> str:
    """Enroll and confirm a key, then move on until no used step is in reach; returns the secret."""
    mid_step(clock)
    secret = await start_totp(portal, user_id)
    codes = [code_at(secret, clock), code_at(secret, clock, 1)]
    reply = await portal.call("POST", f"/v1/users/{user_id}/totp/confirm", {"codes": codes})
    assert reply.status == 200, reply.body
    clock.advance(3 * STEP_SECONDS)
    return secret


async def verify(portal: Portal, user_id: str, code: object) -> tuple[int, dict[str, object]]:
    """POST a code to verify; returns (status, body)."""
    reply = await portal.call("POST", f"/v1/users/{user_id}/totp/verify", {"code": code})
    return reply.status, reply.body
