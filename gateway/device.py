"""Device routes: pending challenges, ack, signed answers, push token, removal, websocket."""

from __future__ import annotations

import asyncio

from aiohttp import web
from webauthn import verify_authentication_response
from webauthn.helpers import base64url_to_bytes
from webauthn.helpers.exceptions import WebAuthnException

from approvals.binding import decision_challenge
from approvals.challenge import device_message, device_view, effective_status, outcome_for_answer
from approvals.events import Progress
from approvals.numbers import number_matches
from approvals.records import ChallengeRecord, DeviceRecord
from approvals.store.outcomes import EndResult
from gateway.auth import require_device
from gateway.bodies import DeviceResponse, NoBody, PushToken, read_body
from gateway.endings import respond_to_end
from gateway.outcomes import end_refused, ensure_pending
from gateway.problems import ProblemError
from gateway.responses import dumps, json_response
from gateway.services import Services, services, tag_request
from gateway.sockets import CleanClosingWebSocket, client_left, listen_to_client, websocket_route
from gateway.waiters import RESYNC, Inbox
from pushgate.logs import get_logger

log = get_logger("gateway.device")
routes = web.RouteTableDef()


async def _own_challenge(svc: Services, device: DeviceRecord, challenge_id: str) -> ChallengeRecord:
    return _owned(device, await svc.challenges.get(challenge_id))


def _owned(device: DeviceRecord, record: ChallengeRecord | None) -> ChallengeRecord:
    """The challenge if it is the device's user's (404 otherwise)."""
    if record is None or record.tenant != device.tenant or record.user_id != device.user_id:
        raise ProblemError("not_found", "no such challenge")
    return record


@routes.get("/v1/device/challenges")
async def list_device_challenges(request: web.Request) -> web.Response:
    """The pending challenges of the device's user (never with the number)."""
    device = await require_device(request)
    svc = services(request)
    records = await svc.challenges.pending_for_user(device.tenant, device.user_id, svc.now_ms())
    return json_response({"items": [device_view(r) for r in records]})


@routes.get("/v1/device/challenges/{challenge_id}")
async def get_device_challenge(request: web.Request) -> web.Response:
    """One challenge for the device; the first read records ``seen``."""
    device = await require_device(request)
    svc = services(request)
    record = await _own_challenge(svc, device, request.match_info["challenge_id"])
    tag_request(request, challenge_id=record.id)
    body = device_view(record)
    now_ms = svc.now_ms()
    body["status"] = effective_status(record, now_ms)
    if body["status"] == "pending" and record.seen_at_ms is None:
        await svc.challenges.mark(record.id, Progress.SEEN, device_id=device.id)
    return json_response(body)


@routes.post("/v1/device/challenges/{challenge_id}/ack")
async def ack_challenge(request: web.Request) -> web.Response:
    """The push arrived on the device: tell the waiting portal ``delivered``."""
    device = await require_device(request)
    await read_body(request, NoBody)
    svc = services(request)
    record = await _own_challenge(svc, device, request.match_info["challenge_id"])
    tag_request(request, challenge_id=record.id)
    now_ms = svc.now_ms()
    ensure_pending(record, now_ms)
    await svc.challenges.mark(record.id, Progress.DELIVERED, device_id=device.id)
    return web.Response(status=204)


@routes.post("/v1/device/challenges/{challenge_id}/response")
async def answer_challenge(request: web.Request) -> web.Response:
    """A signed approve/deny/fraud answer; the first valid one ends the challenge."""
    svc = services(request)
    # device and challenge are read at once (one wait instead of two); nothing about the
    # challenge is used or told before the device is authenticated and the body is valid
    device, found = await asyncio.gather(
        require_device(request), svc.challenges.get(request.match_info["challenge_id"])
    )
    body = await read_body(request, DeviceResponse)
    record = _owned(device, found)
    tag_request(request, tenant=device.tenant, challenge_id=record.id)
    ensure_pending(record, svc.now_ms())
    policy = await svc.policy_cache.get(device.tenant)
    sign_count = _verify_assertion(svc, device, record, body, policy.require_user_verification)
    number_ok = True
    if body.decision == "approve" and record.number_matching:
        number_ok = number_matches(record.number, body.number)
    status, reason = outcome_for_answer(body.decision, number_ok)
    outcome = await svc.challenges.answer(
        record,
        device_id=device.id,
        status=status,
        reason=reason,
        sign_count=sign_count,
        policy=policy,
    )
    if outcome.result is EndResult.SIGN_COUNT:
        raise end_refused(outcome.result, record.status)
    log.info("challenge_answered", challenge_id=record.id, status=status, result=outcome.result)
    return respond_to_end(svc, outcome, counted=status)


def _verify_assertion(
    svc: Services,
    device: DeviceRecord,
    record: ChallengeRecord,
    body: DeviceResponse,
    require_uv: bool,
) -> int:
    """Check the WebAuthn assertion signs exactly this decision; return the new sign count."""
    raw_id = body.assertion.get("rawId") or body.assertion.get("id")
    if raw_id != device.credential_id:
        raise ProblemError("webauthn_invalid", "the assertion is not from this device's credential")
    try:
        verified = verify_authentication_response(
            credential=body.assertion,
            expected_challenge=decision_challenge(record.nonce, body.decision, body.number),
            expected_rp_id=svc.settings.webauthn_rp_id,
            expected_origin=svc.settings.origins,
            credential_public_key=base64url_to_bytes(device.public_key),
            credential_current_sign_count=device.sign_count,
            require_user_verification=require_uv,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise ProblemError("webauthn_invalid", f"assertion rejected: {exc}") from None
    return int(verified.new_sign_count)


@routes.put("/v1/device/push-token")
async def put_push_token(request: web.Request) -> web.Response:
    """Replace the device's push route (token rotation, platform change)."""
    device = await require_device(request)
    body = await read_body(request, PushToken)
    svc = services(request)
    await svc.devices.set_push_token(
        device,
        platform=body.platform,
        push_token=body.push_token or "",
        app_bundle_id=body.app_bundle_id or device.app_bundle_id,
    )
    return web.Response(status=204)


@routes.delete("/v1/device")
async def delete_self(request: web.Request) -> web.Response:
    """The app removed the account: forget this device."""
    device = await require_device(request)
    svc = services(request)
    await svc.devices.remove(
        tenant=device.tenant,
        user_id=device.user_id,
        device_id=device.id,
        by="device",
    )
    return web.Response(status=204)


async def _device_channel(request: web.Request, svc: Services) -> tuple[str, DeviceRecord]:
    device = await require_device(request)
    return svc.backend.user_keys(device.tenant, device.user_id).device_channel, device


async def _first_snapshot(svc: Services, device: DeviceRecord) -> tuple[DeviceRecord, str]:
    return device, await _snapshot(svc, device)


async def _snapshot(svc: Services, device: DeviceRecord) -> str:
    records = await svc.challenges.pending_for_user(device.tenant, device.user_id, svc.now_ms())
    return dumps({"type": "snapshot", "items": [device_view(r) for r in records]})


async def _relay(
    svc: Services,
    ws: CleanClosingWebSocket,
    inbox: Inbox,
    first: tuple[DeviceRecord, str],
) -> None:
    device, snapshot = first
    await ws.send_str(snapshot)
    listen_to_client(ws, inbox)
    while not ws.closed:
        message = await inbox.get()
        if client_left(ws, message):
            return
        if message == RESYNC:
            await ws.send_str(await _snapshot(svc, device))
        else:
            await ws.send_str(device_message(message))


device_websocket = routes.get("/v1/device/ws")(
    websocket_route(
        "device",
        "In-app channel: a snapshot of pending challenges, then new ones and endings live.",
        authorize=_device_channel,
        read=_first_snapshot,
        relay=_relay,
    )
)
