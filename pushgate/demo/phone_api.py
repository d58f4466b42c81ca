"""Phone simulator backend (``/demo/api/phone/{phone}/...``): accounts, prompts, live state.

The page never holds a key or signs anything: it asks this backend, which acts as the
phone's app through the real device routes, and it listens to the phone's state as
server-sent events (one ``state`` event per change and at every TOTP step).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from typing import Any

import aiohttp
from aiohttp import web

from gateway.problems import ProblemError
from pushgate.demo.localapi import check_csrf, read_json, text_field
from pushgate.demo.phones import Phone, PhoneError, epoch_seconds, parse_otpauth
from pushgate.demo.state import DEMO
from pushgate.devicekit import DeviceApiError

_PHONE_ID = re.compile(r"[a-z0-9-]{1,32}")
_DECISIONS = ("approve", "deny", "fraud")

routes = web.RouteTableDef()


def _phone(request: web.Request) -> Phone:
    phone_id = request.match_info["phone"]
    if not _PHONE_ID.fullmatch(phone_id):
        raise ProblemError("not_found", "phone names are 1-32 lowercase letters, digits or '-'")
    try:
        return request.app[DEMO].phones.get(phone_id)
    except PhoneError as exc:
        raise ProblemError("invalid_request", str(exc)) from None


def _device_problem(exc: DeviceApiError) -> web.Response:
    """The API's own problem document, as the phone received it."""
    return web.Response(
        status=exc.status,
        text=json.dumps(exc.problem),
        content_type="application/problem+json",
    )


@routes.get("/demo/api/phone/{phone}/state")
async def state(request: web.Request) -> web.Response:
    """The phone as one JSON document."""
    return web.json_response(_phone(request).view())


@routes.get("/demo/api/phone/{phone}/events")
async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent ``state`` events: now, on every change, and when a code or prompt runs out."""
    phone = _phone(request)
    book = request.app[DEMO].phones
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    with phone.watching() as changed:
        try:
            await response.write(b"retry: 1000\n\n")
            while not book.closing:
                view = phone.view()
                changed.clear()
                await response.write(f"event: state\ndata: {json.dumps(view)}\n\n".encode())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), _next_tick(view))
        except (ConnectionResetError, RuntimeError):
            pass
    return response


def _next_tick(view: dict[str, Any]) -> float:
    """Seconds until the next TOTP step or the first prompt's expiry, whichever is sooner."""
    now = time.time()
    moments = [float(view["step_ends_at"])]
    for prompt in view["prompts"]:
        with contextlib.suppress(ValueError):
            moments.append(_expiry(prompt))
    return max(0.2, min(moments) - now + 0.05)


def _expiry(prompt: dict[str, Any]) -> float:
    value = epoch_seconds(prompt.get("expires_at"))
    if value <= 0:
        raise ValueError("no expiry")
    return value


@routes.post("/demo/api/phone/{phone}/accounts")
async def add_account(request: web.Request) -> web.Response:
    """Add an account from a ``pushgate://enroll`` or ``otpauth://`` link, or a typed key."""
    body = await read_json(request)
    phone = _phone(request)
    try:
        if "link" in body:
            link = text_field(body, "link", max_length=2048)
            if link.startswith("otpauth:"):
                issuer, label, secret = parse_otpauth(link)
                account = phone.add_totp(issuer=issuer, label=label, secret=secret)
            else:
                account = await phone.add_push(link)
        else:
            account = phone.add_totp(
                issuer=str(body.get("issuer") or "")[:64],
                label=text_field(body, "label", max_length=64),
                secret=text_field(body, "secret", max_length=128),
            )
    except PhoneError as exc:
        raise ProblemError("invalid_request", str(exc)) from None
    except DeviceApiError as exc:
        return _device_problem(exc)
    return web.json_response(account.view(time.time()), status=201)


@routes.delete("/demo/api/phone/{phone}/accounts/{account}")
async def delete_account(request: web.Request) -> web.Response:
    """Delete an account (a push account also unregisters its device)."""
    check_csrf(request)
    try:
        await _phone(request).remove(request.match_info["account"])
    except PhoneError as exc:
        raise ProblemError("not_found", str(exc)) from None
    return web.Response(status=204)


@routes.post("/demo/api/phone/{phone}/prompts/{account}/{challenge}/open")
async def open_prompt(request: web.Request) -> web.Response:
    """The request is on screen: the app reads it (the portal sees ``seen``)."""
    check_csrf(request)
    try:
        await _phone(request).open_prompt(
            request.match_info["account"], request.match_info["challenge"]
        )
    except PhoneError as exc:
        raise ProblemError("not_found", str(exc)) from None
    return web.Response(status=204)


@routes.post("/demo/api/phone/{phone}/prompts/{account}/{challenge}/answer")
async def answer_prompt(request: web.Request) -> web.Response:
    """Approve, deny ("I cancelled") or report ("this wasn't me"), signed on the phone."""
    body = await read_json(request)
    decision = body.get("decision")
    if decision not in _DECISIONS:
        raise ProblemError(
            "invalid_request",
            "decision must be approve, deny or fraud",
            errors=[{"field": "decision", "message": "approve | deny | fraud"}],
        )
    number = body.get("number")
    if number is not None and (not isinstance(number, str) or len(number) > 8):
        raise ProblemError("invalid_request", "number must be a short string")
    try:
        view = await _phone(request).answer(
            request.match_info["account"],
            request.match_info["challenge"],
            decision,
            number.strip() if number and decision == "approve" else None,
        )
    except PhoneError as exc:
        raise ProblemError("not_found", str(exc)) from None
    except DeviceApiError as exc:
        return _device_problem(exc)
    except aiohttp.ClientError:
        raise ProblemError("backend_unavailable", "the phone could not reach the server") from None
    return web.json_response({"status": view.get("status"), "reason": view.get("reason")})
