"""Who may ask and how: secrets, Message-Authenticator, duplicates, an unreachable gateway."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestServer
from pyrad.packet import AccessReject, AuthPacket

from gateway.app import create_app
from pushgate.embedded import EmbeddedRedis, free_port
from tests.conftest import make_settings
from tests.integration.conftest import make_tenant
from tests.integration.processes import PUSHGATE, Process, processes, wait_until
from tests.integration.radius.radclient import radclient
from tests.integration.radius.stack import (
    SECRET,
    PacketNas,
    Stack,
    log_events,
    new_user,
    radius_env,
    start_radius,
)

NOT_A_CODE = "hunter2"  # answered at once (no phone, no gateway wait)


def signed(user: str, password: str = NOT_A_CODE) -> dict[str, str]:
    return {"User-Name": user, "User-Password": password, "Message-Authenticator": "0x00"}


async def _dropped(stack: Stack, reason: str) -> None:
    async def logged() -> bool:
        return any(e["reason"] == reason for e in log_events(stack.radius, "radius.dropped"))

    await wait_until(logged, f"a {reason} drop in the log", alive=stack.radius)


async def _logged(radius: Process, event: str) -> None:
    async def found() -> bool:
        return bool(log_events(radius, event))

    await wait_until(found, f"{event} in the log", alive=radius)


async def test_wrong_shared_secret_gets_no_answer_and_is_logged(stack: Stack) -> None:
    """A request signed with another secret is dropped: radclient hears nothing, the log says
    bad_message_authenticator."""
    other = "another-shared-secret-entirely"
    reply = await radclient(stack.radius_port, other, signed(new_user()), timeout=1, retries=1)
    assert reply.code is None, reply.output
    await _dropped(stack, "bad_message_authenticator")


async def test_request_without_message_authenticator_is_dropped_and_logged(stack: Stack) -> None:
    """BlastRADIUS defence: no Message-Authenticator, no answer (even with the right secret)."""
    unsigned = {"User-Name": new_user(), "User-Password": NOT_A_CODE}
    reply = await radclient(stack.radius_port, SECRET, unsigned, timeout=1, retries=1)
    assert reply.code is None, reply.output
    await _dropped(stack, "missing_message_authenticator")


async def test_unknown_client_address_gets_no_answer_and_is_logged(stack: Stack) -> None:
    """A correctly signed request from an address outside PUSHGATE_RADIUS_CLIENTS is dropped."""
    async with PacketNas(stack.radius_port, SECRET, source="127.0.0.2") as nas:
        raw = nas.request(new_user(), NOT_A_CODE).RequestPacket()
        assert await nas.exchange(raw, wait=1.0) is None
    await _dropped(stack, "unknown_client")


async def test_resent_packet_after_the_answer_gets_the_same_signed_reply(stack: Stack) -> None:
    """The same bytes sent again after the reply (the NAS lost it) get the identical reply from
    the cache; the reply verifies, with the Message-Authenticator as its first attribute."""
    async with PacketNas(stack.radius_port, SECRET) as nas:
        request = nas.request(new_user(), NOT_A_CODE)
        raw = request.RequestPacket()
        first = await nas.exchange(raw)
        again = await nas.exchange(raw)
    assert first is not None and again == first
    reply = AuthPacket(packet=first, secret=SECRET.encode(), dict=nas.dictionary)
    assert reply.code == AccessReject
    assert request.VerifyReply(reply, first, enforce_ma=True)
    assert first[20] == 80  # the first attribute is the Message-Authenticator
    resent = [e for e in log_events(stack.radius, "radius.duplicate") if e["id"] == request.id]
    assert [e["resent"] for e in resent] == ["reply"]


async def test_status_server_is_answered(stack: Stack) -> None:
    """radclient's Status-Server (RFC 5997, what a NAS uses to check the server) gets an answer."""
    reply = await radclient(
        stack.radius_port, SECRET, {"Message-Authenticator": "0x00"}, code="status"
    )
    assert reply.code == "Access-Accept", reply.output


@pytest.mark.parametrize(
    ("fail_open", "expected", "message", "event"),
    [
        (False, "Access-Reject", "unreachable", "radius.gateway_unreachable"),
        (True, "Access-Accept", "without a second factor", "radius.fail_open"),
    ],
)
async def test_unreachable_gateway_rejects_unless_configured_to_fail_open(
    stack: Stack, fail_open: bool, expected: str, message: str, event: str
) -> None:
    """Nothing listens at PUSHGATE_RADIUS_API_URL: Access-Reject (fail closed), or Access-Accept
    with PUSHGATE_RADIUS_FAIL_OPEN=true; either way the log says so. SIGTERM stops it (exit 0)."""
    env = radius_env(
        stack.env,
        api_url=f"http://127.0.0.1:{free_port()}",
        api_key=stack.portal_key,
        host="127.0.0.1",
        port=0,
        clients=f"127.0.0.1={SECRET}",
        fail_open=str(fail_open).lower(),
        api_timeout_seconds=2,
    )
    with processes() as started:
        radius, port = await start_radius(started, env, stack.cwd, name=f"radius-down-{fail_open}")
        reply = await radclient(port, SECRET, signed(new_user(), "push"), timeout=10)
        assert reply.code == expected, reply.output
        assert message in reply.message
        await _logged(radius, event)
        radius.terminate()
        assert await radius.wait(10) == 0


@pytest.fixture
async def gateway_without_redis(
    stack: Stack, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> AsyncIterator[tuple[str, str]]:
    """An in-process gateway whose Redis is stopped: it answers 503 backend_unavailable."""
    with EmbeddedRedis(appendonly=False) as server:
        settings = make_settings(server.url)
        tenant = await make_tenant(settings)
        gateway = await aiohttp_server(create_app(settings))
        server.stop()
        yield f"http://127.0.0.1:{gateway.port}", tenant.portal_key


async def test_gateway_without_its_datastore_rejects_the_login(
    stack: Stack, gateway_without_redis: tuple[str, str]
) -> None:
    """The gateway answers 503 (its Redis is down): the login is rejected, never approved."""
    url, key = gateway_without_redis
    env = radius_env(
        stack.env, api_url=url, api_key=key, host="127.0.0.1", port=0, clients=f"127.0.0.1={SECRET}"
    )
    with processes() as started:
        radius, port = await start_radius(started, env, stack.cwd, name="radius-503")
        reply = await radclient(port, SECRET, signed(new_user(), "123456"), timeout=10)
        assert reply.code == "Access-Reject", reply.output
        assert "unreachable" in reply.message
        await _logged(radius, "radius.gateway_unreachable")
        assert "HTTP 503" in log_events(radius, "radius.gateway_unreachable")[0]["error"]


def test_bad_settings_stop_the_server_naming_each_variable(stack: Stack) -> None:
    """``pushgate radius`` with a bad client list and no API key exits 2 naming both variables."""
    env = radius_env(stack.env, api_url=stack.base_url, clients="10.0.0.0/8=short")
    done = subprocess.run(
        [*PUSHGATE, "radius"], env=env, cwd=stack.cwd, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2, done.stderr
    assert "PUSHGATE_RADIUS_API_KEY: is required" in done.stderr
    assert "PUSHGATE_RADIUS_CLIENTS" in done.stderr and "shorter than 16" in done.stderr
