"""Demo portal backend (``/demo/api/portal/...``): what a login page's server does.

Every call goes through the real ``/v1`` API with the demo tenant's portal key, which
stays in this process; the page only ever sees the API's answers.
"""

from __future__ import annotations

import base64
import re
import time
from typing import Any
from urllib.parse import quote

from aiohttp import web

from gateway.bodies import ID_PATTERN
from gateway.problems import ProblemError
from pushgate.demo.localapi import Reply, check_csrf, read_json, relay, text_field
from pushgate.demo.state import DEMO, DemoState

RESOURCE = "demo-portal"
APP_NAME = "Demo Portal"
LOCATIONS = ("Berlin, DE", "San Francisco, US", "São Paulo, BR", "Sydney, AU")
_ID = re.compile(ID_PATTERN)
_BROWSERS = (
    ("Edg/", "Edge"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
)

routes = web.RouteTableDef()


def _state(request: web.Request) -> DemoState:
    return request.app[DEMO]


def user_path(user_id: object) -> str:
    """``/v1/users/{id}`` for a valid user id (anything else is a 422)."""
    if not isinstance(user_id, str) or not _ID.fullmatch(user_id):
        raise ProblemError(
            "invalid_request",
            "user ids are 1-128 letters, digits or ._@+:=- characters",
            errors=[{"field": "user_id", "message": "invalid identifier"}],
        )
    return "/v1/users/" + quote(user_id, safe="")


def _challenge_path(request: web.Request) -> str:
    challenge_id = request.match_info["challenge_id"]
    if not 0 < len(challenge_id) <= 128:
        raise ProblemError("not_found", "no such challenge")
    return "/v1/challenges/" + quote(challenge_id, safe="")


def browser_summary(user_agent: str) -> str:
    """``Chrome on Linux`` from a User-Agent header (what the phone shows as the browser)."""
    browser = next((name for mark, name in _BROWSERS if mark in user_agent), "A browser")
    system = next((name for mark, name in _SYSTEMS if mark in user_agent), "")
    return f"{browser} on {system}" if system else browser


def qr_data_url(svg: object) -> str | None:
    """The API's QR SVG as a ``data:`` URL for an ``<img>`` (never inserted as markup)."""
    if not isinstance(svg, str):
        return None
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _with_qr(reply: Reply) -> web.Response:
    if reply.ok and isinstance(reply.body, dict):
        body = {k: v for k, v in reply.body.items() if k != "qr_svg"}
        body["qr_src"] = qr_data_url(reply.body.get("qr_svg"))
        reply = Reply(reply.status, body, reply.retry_after, reply.headers)
    return relay(reply)


@routes.get("/demo/api/config")
async def config(request: web.Request) -> web.Response:
    """What the pages need to know about this demo (never a key)."""
    state = _state(request)
    return web.json_response(
        {
            "tenant": state.tenant["tenant_id"],
            "app_name": APP_NAME,
            "resource": RESOURCE,
            "locations": list(LOCATIONS),
            "totp": state.totp_available,
            "server": state.settings.public_url,
        }
    )


@routes.post("/demo/api/portal/session")
async def start_session(request: web.Request) -> web.Response:
    """Step one of signing in: the user record (created on first sight) with its MFA state."""
    body = await read_json(request)
    path = user_path(body.get("user_id"))
    api = _state(request).api
    reply = await api.call("GET", path)
    if reply.status == 404:
        user_id = str(body["user_id"])
        profile = {"display_name": user_id[:1].upper() + user_id[1:], "mfa_required": True}
        reply = await api.call("PUT", path, profile)
    return relay(reply)


@routes.get("/demo/api/portal/users/{user_id}")
async def security_overview(request: web.Request) -> web.Response:
    """The Security page's data: the user with MFA state and the enrolled devices."""
    path = user_path(request.match_info["user_id"])
    api = _state(request).api
    user = await api.call("GET", path)
    if not user.ok:
        return relay(user)
    devices = await api.call("GET", path + "/devices")
    if not devices.ok:
        return relay(devices)
    items = devices.body.get("items", []) if isinstance(devices.body, dict) else []
    return web.json_response({"user": user.body, "devices": items})


@routes.post("/demo/api/portal/challenges")
async def create_challenge(request: web.Request) -> web.Response:
    """Ask the user's phone: ``POST /v1/challenges`` for the demo portal resource."""
    body = await read_json(request)
    user_path(body.get("user_id"))
    location = body.get("location")
    if location not in LOCATIONS:
        location = LOCATIONS[0]
    context: dict[str, Any] = {
        "ip": (request.remote or "127.0.0.1")[:64],
        "location": location,
        "user_agent": browser_summary(request.headers.get("User-Agent", "")),
    }
    reply = await _state(request).api.call(
        "POST",
        "/v1/challenges",
        {
            "user_id": body["user_id"],
            "resource": RESOURCE,
            "app_name": APP_NAME,
            "context": context,
        },
    )
    return relay(reply, extra={"server_now": time.time()})


@routes.delete("/demo/api/portal/challenges/{challenge_id}")
async def cancel_challenge(request: web.Request) -> web.Response:
    """The user left the waiting screen: cancel the pending push."""
    check_csrf(request)
    return relay(await _state(request).api.call("DELETE", _challenge_path(request)))


def _code(body: dict[str, Any]) -> str:
    return text_field(body, "code", max_length=16)


@routes.post("/demo/api/portal/challenges/{challenge_id}/totp")
async def challenge_totp(request: web.Request) -> web.Response:
    """Answer a pending push challenge with a verification code instead."""
    body = await read_json(request)
    path = _challenge_path(request) + "/totp"
    return relay(await _state(request).api.call("POST", path, {"code": _code(body)}))


@routes.post("/demo/api/portal/users/{user_id}/totp/verify")
async def verify_totp(request: web.Request) -> web.Response:
    """Sign in with a verification code alone (the user has no push device)."""
    body = await read_json(request)
    path = user_path(request.match_info["user_id"]) + "/totp/verify"
    return relay(await _state(request).api.call("POST", path, {"code": _code(body)}))


@routes.post("/demo/api/portal/users/{user_id}/push-enrollment")
async def push_enrollment(request: web.Request) -> web.Response:
    """A single-use enrollment link and QR code for the phone."""
    check_csrf(request)
    path = user_path(request.match_info["user_id"]) + "/push-enrollments"
    return _with_qr(await _state(request).api.call("POST", path))


@routes.post("/demo/api/portal/users/{user_id}/totp")
async def totp_enrollment(request: web.Request) -> web.Response:
    """Start TOTP enrollment: the key to back up, its QR code and ``pending`` status."""
    check_csrf(request)
    path = user_path(request.match_info["user_id"]) + "/totp"
    return _with_qr(await _state(request).api.call("POST", path))


@routes.post("/demo/api/portal/users/{user_id}/totp/confirm")
async def totp_confirm(request: web.Request) -> web.Response:
    """Activate the key with two consecutive codes."""
    body = await read_json(request)
    codes = body.get("codes")
    if not isinstance(codes, list) or len(codes) != 2 or not all(isinstance(c, str) for c in codes):
        raise ProblemError(
            "invalid_request",
            "send two codes",
            errors=[{"field": "codes", "message": "two strings"}],
        )
    path = user_path(request.match_info["user_id"]) + "/totp/confirm"
    codes = [c.strip()[:16] for c in codes]
    return relay(await _state(request).api.call("POST", path, {"codes": codes}))


@routes.post("/demo/api/portal/users/{user_id}/totp/reset")
async def totp_reset(request: web.Request) -> web.Response:
    """Clear the key with a current code; the answer is a new pending enrollment."""
    body = await read_json(request)
    path = user_path(request.match_info["user_id"]) + "/totp/reset"
    return _with_qr(await _state(request).api.call("POST", path, {"code": _code(body)}))
