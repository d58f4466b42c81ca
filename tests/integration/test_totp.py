"""TOTP through HTTP (SPEC §5): enrollment, two-code confirmation, verify, replay, drift, shape."""

from __future__ import annotations

import asyncio
import base64
from urllib.parse import parse_qs, urlsplit

import pytest
import redis.asyncio as aioredis

from approvals.ids import shard_for
from approvals.store.keys import UserKeys
from pushgate.settings import Settings
from tests.conftest import TestClock
from tests.integration.totp_flow import (
    active_totp,
    code_at,
    mid_step,
    start_totp,
    verify,
)
from tests.portal import Portal


async def test_enrollment_answers_secret_uri_and_qr_and_seals_the_secret(
    portal: Portal, settings: Settings, tenant: object
) -> None:
    """POST totp answers a base32 secret, an otpauth URI and an SVG QR; Redis holds it sealed."""
    await portal.call("PUT", "/v1/users/alice", {"email": "alice@example.com"})
    reply = await portal.call("POST", "/v1/users/alice/totp")
    assert reply.status == 201, reply.body
    secret = reply.body["secret"]
    assert len(base64.b32decode(secret)) == 20
    assert reply.body["status"] == "pending"
    assert reply.body["qr_svg"].startswith("<svg")
    uri = urlsplit(reply.body["otpauth_uri"])
    assert uri.scheme == "otpauth"
    assert uri.path == "/pushgate:alice%40example.com"
    assert parse_qs(uri.query)["secret"] == [secret]
    assert (await portal.call("GET", "/v1/users/alice")).body["mfa"]["totp"] == "pending"
    tenant_id = tenant.tenant_id  # type: ignore[attr-defined]
    uk = UserKeys(shard_for(tenant_id, "alice", settings.shards), tenant_id, "alice")
    client = aioredis.Redis.from_url(str(settings.redis_url), decode_responses=True)
    stored = await client.hget(uk.user, "totp_secret")
    await client.aclose()
    assert stored is not None
    assert stored.startswith("v1.")
    assert secret not in stored


async def test_enrollment_creates_an_unknown_user(portal: Portal) -> None:
    """The first TOTP enrollment of an unknown id creates the user with defaults."""
    await start_totp(portal, "newcomer")
    user = (await portal.call("GET", "/v1/users/newcomer")).body
    assert user["mfa"]["totp"] == "pending"
    assert user["mfa"]["state"] == "grace"
    assert user["mfa"]["days_remaining"] == 7


async def test_two_consecutive_codes_activate_the_key(portal: Portal, clock: TestClock) -> None:
    """Codes of steps n and n+1, in order, activate the key; the user is then enrolled."""
    mid_step(clock)
    secret = await start_totp(portal, "alice")
    codes = [code_at(secret, clock), code_at(secret, clock, 1)]
    reply = await portal.call("POST", "/v1/users/alice/totp/confirm", {"codes": codes})
    assert reply.status == 200, reply.body
    assert reply.body == {"status": "active"}
    mfa = (await portal.call("GET", "/v1/users/alice")).body["mfa"]
    assert (mfa["totp"], mfa["state"]) == ("active", "enrolled")


@pytest.mark.parametrize(
    ("steps", "status", "code"),
    [
        ((0,), 422, "invalid_request"),
        ((0, 0), 422, "code_invalid"),
        ((0, 2), 422, "code_invalid"),
        ((1, 0), 422, "code_invalid"),
        ((0, 1, 2), 422, "invalid_request"),
    ],
    ids=["one-code", "equal-codes", "non-consecutive", "out-of-order", "three-codes"],
)
async def test_confirmation_refuses_anything_but_two_consecutive_codes(
    portal: Portal, clock: TestClock, steps: tuple[int, ...], status: int, code: str
) -> None:
    """One code, equal codes, a gap, the wrong order or three codes leave the key pending."""
    mid_step(clock)
    secret = await start_totp(portal, "alice")
    codes = [code_at(secret, clock, s) for s in steps]
    reply = await portal.call("POST", "/v1/users/alice/totp/confirm", {"codes": codes})
    assert (reply.status, reply.body["code"]) == (status, code)
    assert (await portal.call("GET", "/v1/users/alice")).body["mfa"]["totp"] == "pending"


async def test_confirmation_uses_up_both_steps(portal: Portal, clock: TestClock) -> None:
    """After confirming with steps n and n+1 both codes are replays; step n-1 still verifies."""
    mid_step(clock)
    secret = await start_totp(portal, "alice")
    first, second = code_at(secret, clock), code_at(secret, clock, 1)
    await portal.call("POST", "/v1/users/alice/totp/confirm", {"codes": [first, second]})
    assert (await verify(portal, "alice", first))[1]["code"] == "code_replayed"
    assert (await verify(portal, "alice", second))[1]["code"] == "code_replayed"
    assert await verify(portal, "alice", code_at(secret, clock, -1)) == (200, {"result": "allow"})


async def test_a_code_is_accepted_once_and_replays_do_not_count(
    portal: Portal, clock: TestClock
) -> None:
    """A second use of the same code is 422 code_replayed and costs no attempt."""
    secret = await active_totp(portal, "alice", clock)
    code = code_at(secret, clock)
    assert await verify(portal, "alice", code) == (200, {"result": "allow"})
    status, body = await verify(portal, "alice", code)
    assert (status, body["code"]) == (422, "code_replayed")
    status, body = await verify(portal, "alice", "000000" if code != "000000" else "111111")
    assert (status, body["code"], body["attempts_remaining"]) == (422, "code_invalid", 4)


@pytest.mark.parametrize(("steps", "allowed"), [(-1, True), (1, True), (-2, False), (2, False)])
async def test_one_step_of_drift_is_accepted_and_two_are_refused(
    portal: Portal, clock: TestClock, steps: int, allowed: bool
) -> None:
    """Codes one step early or late verify; codes two steps away are code_invalid."""
    secret = await active_totp(portal, "alice", clock)
    status, body = await verify(portal, "alice", code_at(secret, clock, steps))
    if allowed:
        assert (status, body) == (200, {"result": "allow"})
    else:
        assert (status, body["code"]) == (422, "code_invalid")


@pytest.mark.parametrize(
    "code",
    [
        "12345",
        "1234567",
        "12 345",
        "abcdef",
        "12345a",
        "+12345",
        " 123456",
        "123456\n",
        "",
        "１２３４５６",
        "١٢٣٤٥٦",
        "12.345",
        "0x1234",
    ],
)
async def test_malformed_codes_are_refused_and_counted(
    portal: Portal, clock: TestClock, code: str
) -> None:
    """Anything but six ASCII digits is 422 code_malformed and uses up one attempt."""
    await active_totp(portal, "alice", clock)
    status, body = await verify(portal, "alice", code)
    assert (status, body["code"], body["attempts_remaining"]) == (422, "code_malformed", 4)


@pytest.mark.parametrize("code", [123456, None, ["123456"], {"code": "123456"}])
async def test_codes_of_the_wrong_json_type_are_invalid_requests(
    portal: Portal, clock: TestClock, code: object
) -> None:
    """A code that is not a JSON string is 422 invalid_request naming code (not counted)."""
    secret = await active_totp(portal, "alice", clock)
    status, body = await verify(portal, "alice", code)
    assert (status, body["code"]) == (422, "invalid_request")
    assert body["errors"][0]["field"].startswith("code")
    assert await verify(portal, "alice", code_at(secret, clock)) == (200, {"result": "allow"})


async def test_parallel_verifies_of_one_valid_code_allow_exactly_once(
    portal: Portal, clock: TestClock
) -> None:
    """200 concurrent verifies of the same valid code: one allow, 199 replays, no failures."""
    secret = await active_totp(portal, "alice", clock)
    code = code_at(secret, clock)
    results = await asyncio.gather(*(verify(portal, "alice", code) for _ in range(200)))
    statuses = [status for status, _ in results]
    assert statuses.count(200) == 1
    assert sorted({body.get("code") for status, body in results if status != 200}) == [
        "code_replayed"
    ]
    wrong = "000000" if code != "000000" else "111111"
    assert (await verify(portal, "alice", wrong))[1]["attempts_remaining"] == 4


async def test_verify_without_an_active_key_is_not_found(portal: Portal, clock: TestClock) -> None:
    """Unknown users and users with only a pending key get 404, and nothing is counted."""
    assert (await verify(portal, "ghost", "123456"))[0] == 404
    mid_step(clock)
    secret = await start_totp(portal, "alice")
    assert (await verify(portal, "alice", code_at(secret, clock)))[0] == 404


async def test_enrolling_again_while_active_is_refused(portal: Portal, clock: TestClock) -> None:
    """An active key is replaced only by reset or admin removal: 409 on a new enrollment."""
    await active_totp(portal, "alice", clock)
    reply = await portal.call("POST", "/v1/users/alice/totp")
    assert (reply.status, reply.body["code"]) == (409, "invalid_request")


async def test_reset_needs_a_valid_code_and_returns_a_new_pending_key(
    portal: Portal, clock: TestClock
) -> None:
    """A wrong code is counted and keeps the key; a valid one answers a new pending key."""
    secret = await active_totp(portal, "alice", clock)
    wrong = "000000" if code_at(secret, clock) != "000000" else "111111"
    refused = await portal.call("POST", "/v1/users/alice/totp/reset", {"code": wrong})
    assert (refused.status, refused.body["attempts_remaining"]) == (422, 4)
    reset = await portal.call(
        "POST", "/v1/users/alice/totp/reset", {"code": code_at(secret, clock)}
    )
    assert reset.status == 201, reset.body
    assert reset.body["status"] == "pending"
    assert reset.body["secret"] != secret
    assert (await portal.call("GET", "/v1/users/alice")).body["mfa"]["totp"] == "pending"
    new = reset.body["secret"]
    codes = [code_at(new, clock), code_at(new, clock, 1)]
    confirmed = await portal.call("POST", "/v1/users/alice/totp/confirm", {"codes": codes})
    assert confirmed.status == 200, confirmed.body
    assert (await verify(portal, "alice", code_at(secret, clock, -1)))[0] == 422


async def test_admin_removes_a_key_and_portals_cannot(
    portal: Portal, admin: Portal, clock: TestClock
) -> None:
    """DELETE totp is admin only: 403 for a portal key, 204 for admin, then 404."""
    await active_totp(portal, "alice", clock)
    assert (await portal.call("DELETE", "/v1/users/alice/totp")).status == 403
    assert (await admin.call("DELETE", "/v1/users/alice/totp")).status == 204
    assert (await portal.call("GET", "/v1/users/alice")).body["mfa"]["totp"] == "none"
    assert (await admin.call("DELETE", "/v1/users/alice/totp")).status == 404
