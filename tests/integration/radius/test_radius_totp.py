"""TOTP codes as the RADIUS password, sent by FreeRADIUS's radtest and radclient."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from tests.integration.radius.radclient import radclient, radtest
from tests.integration.radius.stack import SECRET, Scenario, new_user


def login(user: str, password: str) -> dict[str, str]:
    return {"User-Name": user, "User-Password": password, "Message-Authenticator": "0x00"}


async def test_current_totp_code_gives_access_accept_and_a_replay_is_rejected(
    scenario: Scenario,
) -> None:
    """radtest with a valid code -> Access-Accept; the same code again -> Access-Reject saying it
    was already used (each time step is accepted once)."""
    user = new_user()
    app = await scenario.totp(user)
    code = await app.fresh_code()
    port = scenario.stack.radius_port
    accepted = await radtest(port, SECRET, user, code)
    assert accepted.code == "Access-Accept", accepted.output
    assert accepted.first("Message-Authenticator") is not None
    replayed = await radtest(port, SECRET, user, code)
    assert replayed.code == "Access-Reject", replayed.output
    assert "already used" in replayed.message


async def test_wrong_totp_code_is_rejected_with_the_attempts_left(scenario: Scenario) -> None:
    """A wrong code -> Access-Reject "Wrong code (4 attempts left)" (policy allows 5)."""
    user = new_user()
    app = await scenario.totp(user)
    reply = await radclient(scenario.stack.radius_port, SECRET, login(user, app.wrong_code()))
    assert reply.code == "Access-Reject", reply.output
    assert reply.message == "Wrong code (4 attempts left)."


async def test_failed_codes_lock_the_user_for_totp_and_push_alike(scenario: Scenario) -> None:
    """With totp_max_attempts 2, two wrong codes lock the user: a right code and a push are then
    both rejected as locked, the same lockout the API applies."""
    await scenario.policy(totp_max_attempts=2, number_matching=False)
    user = new_user()
    app = await scenario.totp(user)
    await scenario.phone(user)
    port = scenario.stack.radius_port
    messages = [
        (await radclient(port, SECRET, login(user, app.wrong_code()))).message for _ in range(2)
    ]
    assert messages == [
        "Wrong code (1 attempt left).",
        "Wrong code: no attempts left, your account is now locked.",
    ]
    right = await radclient(port, SECRET, login(user, await app.fresh_code()))
    assert right.code == "Access-Reject" and "locked" in right.message, right.output
    push = await radclient(port, SECRET, login(user, "push"))
    assert push.code == "Access-Reject" and "locked" in push.message, push.output


async def test_password_that_is_neither_code_nor_push_is_rejected_with_how_to(
    scenario: Scenario,
) -> None:
    """Anything but six digits, "push" or nothing is rejected with what to type instead."""
    reply = await radclient(scenario.stack.radius_port, SECRET, login(new_user(), "hunter2"))
    assert reply.code == "Access-Reject", reply.output
    assert "6-digit code" in reply.message and "push" in reply.message


async def test_push_for_a_user_without_a_phone_is_rejected_pointing_to_codes(
    scenario: Scenario,
) -> None:
    """No push device (409 no_push_device) -> Access-Reject telling the user to type a code."""
    user = new_user()
    await scenario.totp(user)
    reply = await radclient(scenario.stack.radius_port, SECRET, login(user, ""))
    assert reply.code == "Access-Reject", reply.output
    assert "No phone is set up for push" in reply.message


def _load_test_client() -> ModuleType:
    """``loadtests/radius_client.py``, the blocking client the gevent load test uses."""
    path = Path(__file__).resolve().parents[3] / "loadtests" / "radius_client.py"
    spec = importlib.util.spec_from_file_location("loadtest_radius_client", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


async def test_load_test_radius_client_gets_verified_answers(scenario: Scenario) -> None:
    """The load test's blocking client (what locust runs under gevent) signs its requests and
    accepts the server's signed replies: a TOTP login is accepted, a wrong code rejected."""
    client_module = _load_test_client()
    user = new_user()
    app = await scenario.totp(user)
    nas = client_module.RadiusClient("127.0.0.1", scenario.stack.radius_port, SECRET, timeout=5)
    good = nas.access_request(user, await app.fresh_code())
    accepted = await asyncio.to_thread(nas.exchange, good)
    assert (accepted.code, accepted.message) == ("Access-Accept", "Code accepted.")
    rejected = await asyncio.to_thread(nas.exchange, nas.access_request(user, app.wrong_code()))
    assert rejected.code == "Access-Reject"
