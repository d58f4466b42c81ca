"""The demo backend without a browser: keys stay server-side, phones sign, TOTP fallback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pyotp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from gateway.services import SERVICES
from pusher.worker import Worker
from pushgate.demo.localapi import CSRF_HEADER
from pushgate.demo.site import TOTP_ROUTES, has_routes, install_demo
from pushgate.embedded import free_port
from pushgate.settings import Settings
from tests.conftest import make_settings
from tests.integration.conftest import Tenant, make_tenant

DEMO_HEADERS = {CSRF_HEADER: "1"}


@dataclass
class DemoSite:
    """The gateway with the demo mounted, and a client that calls it like the pages do."""

    base_url: str
    session: aiohttp.ClientSession
    tenant: Tenant
    totp: bool

    async def call(
        self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        sent = DEMO_HEADERS if headers is None else headers
        async with self.session.request(
            method, self.base_url + path, json=body, headers=sent
        ) as resp:
            data = await resp.json(content_type=None) if resp.status != 204 else None
            return resp.status, data, dict(resp.headers)


@pytest.fixture
async def site(
    redis_url: str, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> AsyncIterator[DemoSite]:
    port = free_port()
    settings: Settings = make_settings(
        redis_url, port=port, public_url=f"http://localhost:{port}", drain_seconds=1
    )
    tenant = await make_tenant(settings, "demo")
    app = create_app(settings)
    install_demo(
        app,
        settings=settings,
        tenant={
            "tenant_id": tenant.tenant_id,
            "admin_key": tenant.admin_key,
            "portal_key": tenant.portal_key,
        },
    )
    worker = Worker(settings, sweep_interval=0.2)
    await worker.start()
    await aiohttp_server(app, port=port)
    for _ in range(100):  # a hub closed while it is still subscribing takes seconds to stop
        if app[SERVICES].hub.connected:
            break
        await asyncio.sleep(0.02)
    async with aiohttp.ClientSession() as session:
        yield DemoSite(f"http://localhost:{port}", session, tenant, has_routes(app, TOTP_ROUTES))
    await worker.stop(grace=1)


async def _enrolled_phone(site: DemoSite, user: str, phone: str) -> None:
    status, _, _ = await site.call("POST", "/demo/api/portal/session", {"user_id": user})
    assert status in (200, 201)
    status, enrollment, _ = await site.call(
        "POST", f"/demo/api/portal/users/{user}/push-enrollment"
    )
    assert status == 201, enrollment
    assert enrollment["qr_src"].startswith("data:image/svg+xml;base64,")
    assert "qr_svg" not in enrollment
    status, account, _ = await site.call(
        "POST", f"/demo/api/phone/{phone}/accounts", {"link": enrollment["enroll_url"]}
    )
    assert status == 201, account
    assert account["kind"] == "push" and account["label"] == user
    assert "device_secret" not in account


async def _prompts(site: DemoSite, phone: str, count: int = 1) -> list[dict[str, Any]]:
    for _ in range(100):
        _, state, _ = await site.call("GET", f"/demo/api/phone/{phone}/state")
        if len(state["prompts"]) >= count:
            return list(state["prompts"])
        await asyncio.sleep(0.05)
    raise AssertionError(f"no prompt reached phone {phone}")


async def test_pages_and_config_never_carry_an_api_key(site: DemoSite) -> None:
    """The browser gets pages, scripts and config, none of which contains a key; CSP is strict."""
    paths = ["/demo/", "/demo/phone", "/demo/static/portal.js", "/demo/static/phone.js"]
    for path in [*paths, "/demo/static/common.js", "/demo/api/config"]:
        async with site.session.get(site.base_url + path) as resp:
            text = await resp.text()
            assert resp.status == 200, path
            assert site.tenant.portal_key not in text and site.tenant.admin_key not in text
            assert "pg_live_" not in text
            policy = resp.headers["Content-Security-Policy"]
            assert "default-src 'self'" in policy and "script-src 'self'" in policy
            assert f"ws://{site.base_url.removeprefix('http://')}" in policy
    _, config, _ = await site.call("GET", "/demo/api/config")
    assert config["totp"] is site.totp
    assert config["resource"] == "demo-portal"


async def test_state_changing_calls_need_the_demo_header(site: DemoSite) -> None:
    """A cross-site form post (no custom header, or a foreign Origin) is refused with 403."""
    body = {"user_id": "mallory"}
    status, problem, _ = await site.call("POST", "/demo/api/portal/session", body, headers={})
    assert status == 403 and problem["code"] == "forbidden"
    foreign = {**DEMO_HEADERS, "Origin": "https://evil.example"}
    status, _, _ = await site.call("POST", "/demo/api/portal/session", body, headers=foreign)
    assert status == 403
    status, problem, _ = await site.call("POST", "/demo/api/portal/session", {"user_id": "a b"})
    assert status == 422 and problem["code"] == "invalid_request"


async def test_fraud_report_signed_on_the_phone_blocks_pushes(site: DemoSite) -> None:
    """The phone reports "this wasn't me" with a real signature; the next push is 423."""
    await _enrolled_phone(site, "erin", "p1")
    status, challenge, _ = await site.call(
        "POST", "/demo/api/portal/challenges", {"user_id": "erin", "location": "Sydney, AU"}
    )
    assert status == 201, challenge
    assert challenge["watch_token"] and "server_now" in challenge
    [prompt] = await _prompts(site, "p1")
    assert prompt["id"] == challenge["id"]
    assert prompt["context"]["location"] == "Sydney, AU"
    assert "nonce" not in prompt and "number" not in prompt
    path = f"/demo/api/phone/p1/prompts/{prompt['account_id']}/{prompt['id']}"
    assert (await site.call("POST", path + "/open"))[0] == 204
    status, answer, _ = await site.call("POST", path + "/answer", {"decision": "fraud"})
    assert status == 200 and answer == {"status": "fraud", "reason": "fraud_reported"}
    watch = f"/v1/challenges/{challenge['id']}?watch_token={challenge['watch_token']}"
    _, view, _ = await site.call("GET", watch)
    assert view["status"] == "fraud" and view["push"]["seen_at"] and view["push"]["delivered_at"]
    status, problem, headers = await site.call(
        "POST", "/demo/api/portal/challenges", {"user_id": "erin"}
    )
    assert status == 423 and problem["code"] == "push_blocked"
    assert int(headers["Retry-After"]) > 0
    _, state, _ = await site.call("GET", "/demo/api/phone/p1/state")
    assert state["prompts"] == [] and state["recent"][0]["status"] == "fraud"


async def test_wrong_number_denies_and_deleting_the_account_removes_the_device(
    site: DemoSite,
) -> None:
    """A wrong number ends as number_mismatch; deleting the phone account unregisters it."""
    await _enrolled_phone(site, "frank", "p2")
    status, challenge, _ = await site.call(
        "POST", "/demo/api/portal/challenges", {"user_id": "frank"}
    )
    assert status == 201
    [prompt] = await _prompts(site, "p2")
    wrong = "99" if challenge["number"] != "99" else "98"
    path = f"/demo/api/phone/p2/prompts/{prompt['account_id']}/{prompt['id']}/answer"
    status, answer, _ = await site.call("POST", path, {"decision": "approve", "number": wrong})
    assert answer == {"status": "denied", "reason": "number_mismatch"}
    status, _, _ = await site.call("DELETE", f"/demo/api/phone/p2/accounts/{prompt['account_id']}")
    assert status == 204
    _, overview, _ = await site.call("GET", "/demo/api/portal/users/frank")
    assert overview["devices"] == [] and overview["user"]["mfa"]["push"] == 0


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"link": "pushgate://enroll?server=http%3A%2F%2Fevil.example&code=x"}, "enrolls only"),
        ({"link": "otpauth://totp/X:y?secret=JBSWY3DP"}, "too short"),
        ({"link": "otpauth://totp/X:y?secret=JBSWY3DPEHPK3PXP&digits=8"}, "6-digit"),
        ({"link": "https://example.com"}, "pushgate://enroll"),
        ({"label": "me", "secret": "not base32!"}, "base32"),
    ],
)
async def test_phone_refuses_bad_links_and_keys(
    site: DemoSite, body: dict[str, str], fragment: str
) -> None:
    """Links to other servers, odd TOTP parameters and bad keys are 422 with a reason."""
    status, problem, _ = await site.call("POST", "/demo/api/phone/p3/accounts", body)
    assert status == 422, problem
    assert fragment in problem["detail"]


def _code(secret: str, step: int) -> str:
    return str(pyotp.TOTP(secret).generate_otp(step))


async def test_totp_fallback_inside_a_push_challenge(site: DemoSite) -> None:
    """A verification code answers the pending push: approved by TOTP, the phone's prompt ends."""
    if not site.totp:
        pytest.skip("the gateway has no TOTP routes (SPEC §5) yet")
    await _enrolled_phone(site, "gina", "p4")
    status, enrollment, _ = await site.call("POST", "/demo/api/portal/users/gina/totp")
    assert status in (200, 201), enrollment
    secret = enrollment["secret"]
    status, account, _ = await site.call(
        "POST", "/demo/api/phone/p4/accounts", {"link": enrollment["otpauth_uri"]}
    )
    assert status == 201 and account["kind"] == "totp"
    while time.time() % 30 > 26:  # keep the three steps below inside one window
        await asyncio.sleep(0.5)
    step = int(time.time() // 30)
    assert account["code"] in (_code(secret, step), _code(secret, step - 1))
    codes = [_code(secret, step), _code(secret, step + 1)]
    status, confirmed, _ = await site.call(
        "POST", "/demo/api/portal/users/gina/totp/confirm", {"codes": codes}
    )
    assert status == 200, confirmed
    status, challenge, _ = await site.call(
        "POST", "/demo/api/portal/challenges", {"user_id": "gina"}
    )
    assert status == 201
    await _prompts(site, "p4")
    path = f"/demo/api/portal/challenges/{challenge['id']}/totp"
    status, view, _ = await site.call("POST", path, {"code": _code(secret, step - 1)})
    assert status == 200, view
    assert view["status"] == "approved" and view["method"] == "totp"
    for _ in range(100):
        _, state, _ = await site.call("GET", "/demo/api/phone/p4/state")
        if not state["prompts"]:
            break
        await asyncio.sleep(0.05)
    assert state["prompts"] == []
    reset = "/demo/api/portal/users/gina/totp/reset"
    status, problem, _ = await site.call("POST", reset, {"code": _code(secret, step - 1)})
    assert status == 422 and problem["code"] == "code_replayed"


def test_totp_features_are_detected_from_the_routes() -> None:
    """Without the SPEC §5 routes the pages are told to hide the code features."""
    assert not has_routes(web.Application(), TOTP_ROUTES)
