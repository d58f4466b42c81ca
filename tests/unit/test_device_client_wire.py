"""DeviceClient's requests on the wire, against a minimal SPEC §3–§4 device endpoint.

The endpoint below is a real aiohttp server that checks what a client sends with the real
py_webauthn verifiers; the gateway's own tests cover the full server behaviour.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from webauthn import (
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import InvalidAuthenticationResponse

from approvals.binding import decision_challenge
from pushgate.devicekit import DeviceApiError, DeviceCredentials, SoftAuthenticator
from pushgate.devicekit.client import DeviceClient

CODE = "enroll-code-1"
RP_ID = "localhost"
CHALLENGE: dict[str, Any] = {
    "id": "ch_1",
    "app_name": "Salesforce",
    "nonce": "nonce-1",
    "number_matching": True,
}
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


def problem(status: int, code: str) -> web.Response:
    """An RFC 9457 error answer."""
    body = {"type": "about:blank", "title": code, "status": status, "code": code}
    return web.json_response(body, status=status, content_type="application/problem+json")


class DeviceEndpoint:
    """Just enough of the device API to check the client's requests."""

    def __init__(self) -> None:
        """Start with no device enrolled."""
        self.registration_challenge = b"r" * 32
        self.public_key = b""
        self.sign_count = 0
        self.requests: list[tuple[str, str, Any]] = []

    def app(self) -> web.Application:
        """The aiohttp application serving the device routes."""
        app = web.Application(middlewares=[self.record])
        app.router.add_post("/v1/device/enroll/options", self.options)
        app.router.add_post("/v1/device/enroll", self.enroll)
        app.router.add_get("/v1/device/challenges", self.list_challenges)
        app.router.add_get("/v1/device/challenges/{id}", self.get_challenge)
        app.router.add_post("/v1/device/challenges/{id}/ack", self.no_content)
        app.router.add_post("/v1/device/challenges/{id}/response", self.respond)
        app.router.add_put("/v1/device/push-token", self.no_content)
        app.router.add_delete("/v1/device", self.no_content)
        app.router.add_get("/v1/device/ws", self.websocket)
        app.router.add_get("/teapot", self.teapot)
        return app

    @web.middleware
    async def record(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Note each request and refuse device routes without the issued secret."""
        body = await request.json() if request.can_read_body else None
        self.requests.append((request.method, request.path, body))
        open_paths = {"/v1/device/enroll/options", "/v1/device/enroll", "/teapot"}
        if request.path not in open_paths and (
            request.headers.get("Authorization") != "Device dev_1.secret_1"
        ):
            return problem(401, "unauthorized")
        return await handler(request)

    async def options(self, request: web.Request) -> web.Response:
        """Creation options for the one valid code."""
        if (await request.json())["code"] != CODE:
            return problem(404, "enrollment_code_invalid")
        options = generate_registration_options(
            rp_id=RP_ID,
            rp_name="pushgate",
            user_name="alice",
            challenge=self.registration_challenge,
        )
        return web.json_response(json.loads(options_to_json(options)))

    async def enroll(self, request: web.Request) -> web.Response:
        """Verify the registration and issue the device secret."""
        body = await request.json()
        verified = verify_registration_response(
            credential=body["credential"],
            expected_challenge=self.registration_challenge,
            expected_rp_id=RP_ID,
            expected_origin=str(request.url.origin()),
            require_user_verification=True,
        )
        self.public_key = verified.credential_public_key
        return web.json_response({"device_id": "dev_1", "device_secret": "secret_1"}, status=201)

    async def list_challenges(self, request: web.Request) -> web.Response:
        """The one pending challenge."""
        return web.json_response({"items": [CHALLENGE]})

    async def get_challenge(self, request: web.Request) -> web.Response:
        """The one pending challenge by id."""
        if request.match_info["id"] != CHALLENGE["id"]:
            return problem(404, "not_found")
        return web.json_response(CHALLENGE)

    async def respond(self, request: web.Request) -> web.Response:
        """Check the signed decision as SPEC §3 says."""
        body = await request.json()
        expected = decision_challenge(CHALLENGE["nonce"], body["decision"], body.get("number"))
        try:
            verified = verify_authentication_response(
                credential=body["assertion"],
                expected_challenge=expected,
                expected_rp_id=RP_ID,
                expected_origin=str(request.url.origin()),
                credential_public_key=self.public_key,
                credential_current_sign_count=self.sign_count,
                require_user_verification=True,
            )
        except InvalidAuthenticationResponse:
            return problem(422, "webauthn_invalid")
        self.sign_count = verified.new_sign_count
        status = {"approve": "approved", "deny": "denied", "fraud": "fraud"}[body["decision"]]
        return web.json_response({"id": CHALLENGE["id"], "status": status})

    async def no_content(self, request: web.Request) -> web.Response:
        """A 204 action."""
        return web.Response(status=204)

    async def teapot(self, request: web.Request) -> web.Response:
        """An error whose body is not JSON."""
        return web.Response(status=503, text="upstream down", headers={"Retry-After": "3"})

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        """Send a challenge, a non-object frame, an end notice, then close."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json(CHALLENGE)
        await ws.send_str("[1, 2]")
        await ws.send_json({"type": "ended", "id": CHALLENGE["id"]})
        await ws.close()
        return ws


@pytest.fixture
def endpoint() -> DeviceEndpoint:
    """A fresh device endpoint."""
    return DeviceEndpoint()


@pytest.fixture
async def base_url(aiohttp_server: ServerFactory, endpoint: DeviceEndpoint) -> str:
    """The endpoint's URL on localhost."""
    server = await aiohttp_server(endpoint.app())
    return str(server.make_url("")).rstrip("/")


async def test_enroll_then_approve_with_a_verified_signature(
    base_url: str, endpoint: DeviceEndpoint
) -> None:
    """Enrolment and a number-matched approval pass the real py_webauthn checks."""
    async with DeviceClient(base_url) as device:
        creds = await device.enroll(CODE, device_name="Pixel 9")
        assert creds == DeviceCredentials("dev_1", "secret_1")
        [pending] = await device.list_challenges()
        await device.ack(pending["id"])
        view = await device.respond(pending["id"], "approve", "47")
    assert view["status"] == "approved"
    assert endpoint.sign_count == 1
    enroll_body = endpoint.requests[1][2]
    assert set(enroll_body) == {"code", "credential", "platform", "device_name"}
    answer = endpoint.requests[-1][2]
    assert set(answer) == {"decision", "number", "assertion"}


async def test_respond_uses_a_given_nonce_without_reading_the_challenge(
    base_url: str, endpoint: DeviceEndpoint
) -> None:
    """With nonce= the client posts the answer directly, with no GET of the challenge."""
    async with DeviceClient(base_url) as device:
        await device.enroll(CODE)
        view = await device.respond("ch_1", "fraud", nonce=CHALLENGE["nonce"])
    assert view["status"] == "fraud"
    assert [r[:2] for r in endpoint.requests[2:]] == [
        ("POST", "/v1/device/challenges/ch_1/response")
    ]


async def test_signature_from_a_foreign_origin_raises_webauthn_invalid(base_url: str) -> None:
    """A 422 problem answer surfaces as DeviceApiError with its stable code."""
    async with DeviceClient(base_url) as device:
        await device.enroll(CODE)
        assert device.authenticator is not None
        state = device.authenticator.to_json() | {"origin": "https://evil.example"}
        device.authenticator = SoftAuthenticator.from_json(state)
        with pytest.raises(DeviceApiError) as caught:
            await device.respond("ch_1", "approve")
    assert caught.value.status == 422
    assert caught.value.code == "webauthn_invalid"


async def test_wrong_secret_raises_unauthorized(base_url: str) -> None:
    """A device with a bad secret gets DeviceApiError 401 unauthorized."""
    bad = DeviceCredentials("dev_1", "wrong")
    async with DeviceClient(base_url, credentials=bad) as device:
        with pytest.raises(DeviceApiError) as caught:
            await device.list_challenges()
    assert (caught.value.status, caught.value.code) == (401, "unauthorized")


async def test_non_json_error_keeps_status_detail_and_retry_after(base_url: str) -> None:
    """An error without a problem body still raises DeviceApiError with its text."""
    async with DeviceClient(base_url) as device:
        with pytest.raises(DeviceApiError) as caught:
            await device._request("GET", "/teapot", auth=False)
    assert caught.value.status == 503
    assert caught.value.detail == "upstream down"
    assert caught.value.retry_after == 3.0


async def test_websocket_yields_json_objects_until_the_server_closes(base_url: str) -> None:
    """The device socket yields each JSON object message and ends on close."""
    async with DeviceClient(base_url) as device:
        await device.enroll(CODE)
        async with device.websocket() as ws:
            messages = [message async for message in ws]
    assert messages == [CHALLENGE, {"type": "ended", "id": "ch_1"}]


async def test_push_token_update_and_removal(base_url: str, endpoint: DeviceEndpoint) -> None:
    """Token updates send only given fields; removal forgets the device secret."""
    async with DeviceClient(base_url) as device:
        await device.enroll(CODE)
        await device.update_push_token("fcm", "tok")
        await device.remove()
        assert device.credentials is None
    assert endpoint.requests[-2] == (
        "PUT",
        "/v1/device/push-token",
        {"platform": "fcm", "push_token": "tok"},
    )
    assert endpoint.requests[-1][:2] == ("DELETE", "/v1/device")
