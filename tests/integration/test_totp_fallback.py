"""TOTP fallback inside a pending push challenge (SPEC §5): approval with method totp."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp.test_utils import TestServer

from pushgate.settings import Settings
from tests.conftest import TestClock
from tests.integration.conftest import Enroll, base_url, make_tenant
from tests.integration.totp_flow import active_totp, code_at, verify
from tests.portal import Portal


async def test_fallback_code_approves_and_wakes_the_waiting_websocket(
    portal: Portal, enroll: Enroll, clock: TestClock
) -> None:
    """A valid code ends the pending challenge as approved (method totp); the waiter sees it."""
    await enroll("alice")
    secret = await active_totp(portal, "alice", clock)
    created = (await portal.create_challenge("alice")).body
    waiter = asyncio.create_task(
        portal.wait_result(created["id"], watch_token=created["watch_token"])
    )
    await asyncio.sleep(0.2)
    reply = await portal.call(
        "POST", f"/v1/challenges/{created['id']}/totp", {"code": code_at(secret, clock)}
    )
    assert reply.status == 200, reply.body
    assert (reply.body["status"], reply.body["method"]) == ("approved", "totp")
    messages = await asyncio.wait_for(waiter, 10)
    assert messages[-1]["type"] == "result"
    assert messages[-1]["challenge"]["status"] == "approved"
    assert messages[-1]["challenge"]["method"] == "totp"


async def test_wrong_fallback_code_is_counted_and_leaves_the_challenge_pending(
    portal: Portal, enroll: Enroll, clock: TestClock
) -> None:
    """A wrong code answers code_invalid with attempts_remaining; the push still waits."""
    await enroll("alice")
    secret = await active_totp(portal, "alice", clock)
    created = (await portal.create_challenge("alice")).body
    wrong = "000000" if code_at(secret, clock) != "000000" else "111111"
    reply = await portal.call("POST", f"/v1/challenges/{created['id']}/totp", {"code": wrong})
    assert (reply.status, reply.body["code"], reply.body["attempts_remaining"]) == (
        422,
        "code_invalid",
        4,
    )
    view = (await portal.call("GET", f"/v1/challenges/{created['id']}")).body
    assert view["status"] == "pending"


async def test_fallback_on_a_decided_challenge_keeps_the_code_unused(
    portal: Portal, enroll: Enroll, clock: TestClock
) -> None:
    """After a device answered, the fallback gets 409 and the code still verifies later."""
    device = await enroll("alice")
    secret = await active_totp(portal, "alice", clock)
    created = (await portal.create_challenge("alice")).body
    await device.respond(created["id"], "deny")
    code = code_at(secret, clock)
    reply = await portal.call("POST", f"/v1/challenges/{created['id']}/totp", {"code": code})
    assert (reply.status, reply.body["code"]) == (409, "challenge_already_decided")
    assert await verify(portal, "alice", code) == (200, {"result": "allow"})


async def test_fallback_needs_an_api_key_of_the_challenge_tenant(
    portal: Portal,
    enroll: Enroll,
    clock: TestClock,
    settings: Settings,
    server: TestServer,
    session: aiohttp.ClientSession,
) -> None:
    """A watch token cannot submit codes (401) and another tenant's key gets 404."""
    await enroll("alice")
    secret = await active_totp(portal, "alice", clock)
    created = (await portal.create_challenge("alice")).body
    path = f"/v1/challenges/{created['id']}/totp"
    body = {"code": code_at(secret, clock)}
    watcher = await portal.call(
        "POST", f"{path}?watch_token={created['watch_token']}", body, auth=False
    )
    assert watcher.status == 401
    other = await make_tenant(settings, "other")
    foreign = Portal(session, base_url(server), other.portal_key)
    assert (await foreign.call("POST", path, body)).status == 404
    assert (await portal.call("POST", path, body)).status == 200
