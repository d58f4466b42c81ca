"""Push logins over RADIUS, driven by FreeRADIUS's radclient against real processes."""

from __future__ import annotations

import asyncio
import re

from tests.integration.audit import settled_events
from tests.integration.processes import wait_until
from tests.integration.radius.radclient import radclient
from tests.integration.radius.stack import SECRET, Scenario, log_events, new_user

NUMBER = re.compile(r"Enter (\d+) in your authenticator app")


def login(user: str, password: str = "push", **extra: str) -> dict[str, str]:  # noqa: S107
    """An Access-Request as a VPN sends it: signed, with the caller's address."""
    return {
        "User-Name": user,
        "User-Password": password,
        "Calling-Station-Id": "203.0.113.9",
        "Message-Authenticator": "0x00",
        **extra,
    }


async def test_push_approved_on_the_phone_gives_access_accept(scenario: Scenario) -> None:
    """Number matching off: the request waits for the phone; approve -> Access-Accept, and the
    phone saw the app name and the caller's IP from Calling-Station-Id."""
    await scenario.policy(number_matching=False)
    user = new_user()
    phone = await scenario.phone(user)
    port = scenario.stack.radius_port
    sent = asyncio.create_task(radclient(port, SECRET, login(user), timeout=20))
    (item,) = await scenario.pending(phone)
    assert item["app_name"] == "VPN"
    assert item["context"]["ip"] == "203.0.113.9"
    assert item["number_matching"] is False
    await phone.respond(item["id"], "approve")
    reply = await sent
    assert reply.code == "Access-Accept", reply.output
    assert reply.first("Message-Authenticator") is not None


async def test_push_denied_on_the_phone_gives_access_reject_saying_why(
    scenario: Scenario,
) -> None:
    """Deny on the phone -> Access-Reject with a Reply-Message saying it was denied."""
    await scenario.policy(number_matching=False)
    user = new_user()
    phone = await scenario.phone(user)
    sent = asyncio.create_task(
        radclient(scenario.stack.radius_port, SECRET, login(user), timeout=20)
    )
    (item,) = await scenario.pending(phone)
    await phone.respond(item["id"], "deny")
    reply = await sent
    assert reply.code == "Access-Reject", reply.output
    assert "denied on your phone" in reply.message


async def test_unanswered_push_expires_into_access_reject(scenario: Scenario) -> None:
    """Nobody answers within push_ttl_seconds (15) -> Access-Reject "no answer in time"."""
    await scenario.policy(number_matching=False, push_ttl_seconds=15)
    user = new_user()
    await scenario.phone(user)
    reply = await radclient(scenario.stack.radius_port, SECRET, login(user, ""), timeout=40)
    assert reply.code == "Access-Reject", reply.output
    assert "No answer from your phone in time" in reply.message


async def test_number_matching_challenges_with_the_number_then_state_waits_for_approval(
    scenario: Scenario,
) -> None:
    """Number matching on (the tenant default): Access-Challenge with State, Session-Timeout and
    the number in Reply-Message; the follow-up with that State waits, and approving with the
    number gives Access-Accept. The same State is refused afterwards."""
    user = new_user()
    phone = await scenario.phone(user)
    port = scenario.stack.radius_port
    first = await radclient(port, SECRET, login(user))
    assert first.code == "Access-Challenge", first.output
    assert first.state is not None and first.first("Session-Timeout") == "60"
    match = NUMBER.search(first.message)
    assert match is not None, first.message
    number = match.group(1)
    (item,) = await scenario.pending(phone)
    assert item["number_matching"] is True
    follow_up = login(user, "", State=first.state)
    sent = asyncio.create_task(radclient(port, SECRET, follow_up, timeout=20))
    await wait_until(
        lambda: _waiting_on(scenario, item["id"]), "the follow-up waiting for the phone"
    )
    await phone.respond(item["id"], "approve", number=number)
    reply = await sent
    assert reply.code == "Access-Accept", reply.output
    again = await radclient(port, SECRET, follow_up)
    assert again.code == "Access-Reject" and "unknown or already answered" in again.message


async def _waiting_on(scenario: Scenario, challenge_id: str) -> bool:
    """True once the RADIUS server waits for the phone's answer to ``challenge_id``."""
    waiting = log_events(scenario.stack.radius, "radius.waiting")
    return any(e["challenge_id"] == challenge_id for e in waiting)


async def test_wrong_number_on_the_phone_rejects_the_follow_up(scenario: Scenario) -> None:
    """Approving with another number ends the challenge denied: the follow-up gets Access-Reject."""
    user = new_user()
    phone = await scenario.phone(user)
    port = scenario.stack.radius_port
    first = await radclient(port, SECRET, login(user))
    match = NUMBER.search(first.message)
    assert first.state is not None and match is not None
    wrong = "99" if match.group(1) != "99" else "98"
    (item,) = await scenario.pending(phone)
    await phone.respond(item["id"], "approve", number=wrong)
    reply = await radclient(port, SECRET, login(user, "OK", State=first.state))
    assert reply.code == "Access-Reject", reply.output
    assert "did not match" in reply.message


async def test_code_typed_at_the_challenge_prompt_approves_that_challenge_by_totp(
    scenario: Scenario,
) -> None:
    """Six digits typed at the number prompt are checked as TOTP for that challenge: Accept, and
    the challenge reads approved with method totp."""
    user = new_user()
    phone = await scenario.phone(user)
    app = await scenario.totp(user)
    port = scenario.stack.radius_port
    first = await radclient(port, SECRET, login(user))
    assert first.code == "Access-Challenge" and first.state is not None
    (item,) = await scenario.pending(phone)
    reply = await radclient(port, SECRET, login(user, await app.fresh_code(), State=first.state))
    assert reply.code == "Access-Accept", reply.output
    view = await scenario.challenge(item["id"])
    assert (view["status"], view["method"]) == ("approved", "totp")


async def test_retransmitted_request_sends_one_push_and_gets_the_answer(
    scenario: Scenario,
) -> None:
    """radclient retransmits the same packet every second while the push waits (gateway dedupe
    off): the copies are recognised, exactly one challenge is created, and the answer arrives."""
    await scenario.policy(number_matching=False, dedupe_seconds=0)
    user = new_user()
    phone = await scenario.phone(user)
    port = scenario.stack.radius_port
    before = len(log_events(scenario.stack.radius, "radius.duplicate"))
    sent = asyncio.create_task(radclient(port, SECRET, login(user), timeout=1, retries=20))

    async def retransmitted() -> bool:
        return len(log_events(scenario.stack.radius, "radius.duplicate")) >= before + 2

    await wait_until(retransmitted, "two retransmissions", timeout=15)
    (item,) = await scenario.pending(phone)
    await phone.respond(item["id"], "approve")
    reply = await sent
    assert reply.code == "Access-Accept", reply.output
    events = await settled_events(scenario.admin)
    created = [e for e in events if e["type"] == "challenge.created" and e["user_id"] == user]
    assert len(created) == 1
