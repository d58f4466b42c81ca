"""Push enrollment: single-use codes, WebAuthn registration, device management."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from pushgate.devicekit.authenticator import SoftAuthenticator
from pushgate.devicekit.client import DeviceClient
from pushgate.devicekit.errors import DeviceApiError
from tests.conftest import ORIGIN
from tests.integration.conftest import Enroll, base_url
from tests.portal import Portal


def new_device(server: TestServer, session: aiohttp.ClientSession) -> DeviceClient:
    return DeviceClient(
        base_url(server),
        session=session,
        authenticator=SoftAuthenticator.generate(origin=ORIGIN, rp_id="localhost"),
    )


async def test_enrollment_returns_code_link_and_qr(portal: Portal) -> None:
    """The portal gets a single-use code, a pushgate:// link and an SVG QR code."""
    reply = await portal.call("POST", "/v1/users/alice/push-enrollments")
    assert reply.status == 201
    body = reply.body
    assert body["enroll_url"].startswith("pushgate://enroll?server=")
    assert body["code"] in body["enroll_url"]
    assert body["qr_svg"].startswith("<svg")
    assert len(body["code"]) >= 32


async def test_enrolled_device_is_listed_without_secrets(portal: Portal, enroll: Enroll) -> None:
    """After enrollment the user's device list shows the device and no secret material."""
    device = await enroll("alice")
    listed = (await portal.call("GET", "/v1/users/alice/devices")).body["items"]
    assert [d["device_id"] for d in listed] == [device.device_id]
    assert "secret" not in str(listed) and "public_key" not in str(listed)
    user = (await portal.call("GET", "/v1/users/alice")).body
    assert user["mfa"]["push"] == 1
    assert user["mfa"]["state"] == "enrolled"


async def test_enrollment_code_cannot_be_used_twice(
    portal: Portal, server: TestServer, session: aiohttp.ClientSession
) -> None:
    """A second device presenting a consumed code gets 422 enrollment_code_invalid."""
    code = await portal.enrollment_code("alice")
    await new_device(server, session).enroll(code)
    with pytest.raises(DeviceApiError) as caught:
        await new_device(server, session).enroll(code)
    assert caught.value.status == 422
    assert caught.value.code == "enrollment_code_invalid"


async def test_twenty_concurrent_enrollments_with_one_code_create_one_device(
    portal: Portal, server: TestServer, session: aiohttp.ClientSession
) -> None:
    """Exactly one of 20 racing devices consumes a code; the others get 422."""
    code = await portal.enrollment_code("alice")
    devices = [new_device(server, session) for _ in range(20)]
    results = await asyncio.gather(*(d.enroll(code) for d in devices), return_exceptions=True)
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, DeviceApiError)]
    assert len(winners) == 1
    assert len(losers) == 19
    assert {e.status for e in losers} == {422}
    listed = (await portal.call("GET", "/v1/users/alice/devices")).body["items"]
    assert len(listed) == 1


async def test_unknown_code_is_refused(server: TestServer, session: aiohttp.ClientSession) -> None:
    """A made-up code gets 422 enrollment_code_invalid before any WebAuthn work."""
    with pytest.raises(DeviceApiError) as caught:
        await new_device(server, session).enroll("en0001" + "A" * 32)
    assert caught.value.code == "enrollment_code_invalid"


async def test_registration_from_another_origin_is_refused(
    portal: Portal, server: TestServer, session: aiohttp.ClientSession
) -> None:
    """A credential created for a foreign origin fails WebAuthn verification (422)."""
    code = await portal.enrollment_code("alice")
    phishing = DeviceClient(
        base_url(server),
        session=session,
        authenticator=SoftAuthenticator.generate(origin="https://evil.example", rp_id="localhost"),
    )
    with pytest.raises(DeviceApiError) as caught:
        await phishing.enroll(code)
    assert caught.value.code == "webauthn_invalid"


async def test_admin_removes_device_and_device_secret_stops_working(
    admin: Portal, portal: Portal, enroll: Enroll
) -> None:
    """Admin removal deletes the device; its credentials then get 401."""
    device = await enroll("alice")
    denied = await portal.call("DELETE", f"/v1/users/alice/devices/{device.device_id}")
    assert denied.status == 403
    removed = await admin.call("DELETE", f"/v1/users/alice/devices/{device.device_id}")
    assert removed.status == 204
    with pytest.raises(DeviceApiError) as caught:
        await device.list_challenges()
    assert caught.value.status == 401


async def test_device_removes_itself_and_user_has_no_push_device(
    portal: Portal, enroll: Enroll
) -> None:
    """DELETE /v1/device forgets the device; new challenges answer 409 no_push_device."""
    device = await enroll("alice")
    await device.remove()
    reply = await portal.create_challenge("alice")
    assert reply.status == 409
    assert reply.body["code"] == "no_push_device"


async def test_push_token_update_is_accepted(enroll: Enroll, portal: Portal) -> None:
    """A device can move to an APNs token; the portal sees the platform change."""
    device = await enroll("alice")
    await device.update_push_token("apns", "ab" * 32, "com.example.authenticator")
    listed = (await portal.call("GET", "/v1/users/alice/devices")).body["items"]
    assert listed[0]["platform"] == "apns"
    assert listed[0]["push_token_valid"] is True
