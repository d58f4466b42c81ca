"""One clock: every time-based decision is made with the Redis server's time, so a gateway
whose host clock is 30 s off decides exactly like the others.

Three gateway replicas share one Redis: one with a correct host clock, one whose host clock
runs 30 s ahead and one 30 s behind (injected through the ``clock`` seam). Time passes for all
of them alike (the tests move the shared clock instead of sleeping).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from approvals.totp import current_code
from gateway.app import create_app
from pushgate.devicekit.authenticator import SoftAuthenticator
from pushgate.devicekit.client import DeviceClient
from pushgate.devicekit.errors import DeviceApiError
from pushgate.settings import Settings
from tests.conftest import ORIGIN, TestClock
from tests.integration.conftest import Tenant, base_url
from tests.integration.totp_flow import active_totp, verify
from tests.portal import Portal

SKEW_SECONDS = 30.0


class SkewedClock(TestClock):
    """A host clock ``skew`` seconds off, sharing the test's clock shift (time passes alike)."""

    def __init__(self, shared: TestClock, skew: float) -> None:
        self._shared = shared
        super().__init__(host=lambda: time.time() + skew)

    @property  # type: ignore[override]
    def shift(self) -> float:
        return self._shared.shift

    @shift.setter
    def shift(self, value: float) -> None:
        self._shared.shift = value


Replica = tuple[Portal, Portal, str]  # portal key, admin key, base URL


@pytest.fixture
async def replicas(
    settings: Settings,
    clock: TestClock,
    tenant: Tenant,
    portal: Portal,
    session: aiohttp.ClientSession,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> dict[str, Replica]:
    """The fixture's gateway (correct clock) and two more, 30 s ahead and 30 s behind."""
    out: dict[str, Replica] = {}
    for name, skew in (("ahead", SKEW_SECONDS), ("behind", -SKEW_SECONDS)):
        server = await aiohttp_server(create_app(settings, clock=SkewedClock(clock, skew)))
        url = base_url(server)
        out[name] = (
            Portal(session, url, tenant.portal_key),
            Portal(session, url, tenant.admin_key),
            url,
        )
    out["correct"] = (portal, Portal(session, portal.base_url, tenant.admin_key), portal.base_url)
    return out


async def phone_for(user: str, portal: Portal, at: str) -> DeviceClient:
    """A phone enrolled through ``portal``; it talks to the replica at ``at``."""
    device = DeviceClient(
        portal.base_url,
        session=portal.session,
        authenticator=SoftAuthenticator.generate(origin=ORIGIN, rp_id="localhost"),
    )
    await device.enroll(await portal.enrollment_code(user))
    device.base_url = at
    return device


async def test_a_gateway_30_s_ahead_ends_no_lockout_no_block_and_no_challenge_early(
    replicas: dict[str, Replica], clock: TestClock
) -> None:
    """Through the replica whose clock runs 30 s ahead: a user locked for 20 s is still
    locked, pushes blocked for 20 s after a fraud report are still blocked, and a challenge
    with 20 s of its 60 left is still pending and can be approved."""
    portal, admin, _ = replicas["correct"]
    ahead, _, ahead_url = replicas["ahead"]
    patched = await admin.call(
        "PATCH", "/v1/policy", {"lockout_seconds": 20, "fraud_block_seconds": 20}
    )
    assert patched.status == 200
    await active_totp(portal, "locked", clock)
    for _ in range(5):
        await verify(portal, "locked", "000000")
    assert (await verify(ahead, "locked", "000000"))[0] == 423
    user = (await ahead.call("GET", "/v1/users/locked")).body
    assert user["mfa"]["state"] == "locked"

    reporter = await phone_for("bob", portal, portal.base_url)
    reported = (await portal.create_challenge("bob")).body
    assert (await reporter.respond(reported["id"], "fraud"))["status"] == "fraud"
    blocked = await ahead.create_challenge("bob", resource="vpn")
    assert (blocked.status, blocked.body["code"]) == (423, "push_blocked")

    phone = await phone_for("carol", portal, ahead_url)
    created = (await portal.create_challenge("carol")).body
    clock.advance(40)
    assert (await ahead.call("GET", f"/v1/challenges/{created['id']}")).body["status"] == "pending"
    answered = await phone.respond(created["id"], "approve", created["number"])
    assert answered["status"] == "approved"


async def test_a_gateway_30_s_behind_takes_no_answer_after_the_deadline(
    replicas: dict[str, Replica], clock: TestClock
) -> None:
    """Through the replica whose clock runs 30 s behind: a challenge whose 15 s have passed
    reads expired and its answer gets 410, though that host thinks 15 s remain."""
    portal, admin, _ = replicas["correct"]
    behind, _, behind_url = replicas["behind"]
    assert (await admin.call("PATCH", "/v1/policy", {"push_ttl_seconds": 15})).status == 200
    phone = await phone_for("dave", portal, behind_url)
    created = (await portal.create_challenge("dave")).body
    clock.advance(16)
    with pytest.raises(DeviceApiError) as late:
        await phone.respond(created["id"], "approve", created["number"])
    assert (late.value.status, late.value.code) == (410, "challenge_expired")
    assert (await behind.call("GET", f"/v1/challenges/{created['id']}")).body["status"] == "expired"


async def test_totp_codes_verify_through_skewed_gateways(
    replicas: dict[str, Replica], clock: TestClock
) -> None:
    """A phone with a correct clock gets its current code accepted through the gateway 30 s
    ahead and the one 30 s behind: the step is taken from Redis's time, not the host's."""
    portal, _, _ = replicas["correct"]
    secret = await active_totp(portal, "erin", clock)
    ahead, _, _ = replicas["ahead"]
    behind, _, _ = replicas["behind"]
    assert await verify(ahead, "erin", current_code(secret, clock())) == (200, {"result": "allow"})
    clock.advance(30)
    assert await verify(behind, "erin", current_code(secret, clock())) == (200, {"result": "allow"})
