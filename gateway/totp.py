"""TOTP routes (SPEC §5): enroll, confirm, verify, challenge fallback, reset and removal.

Codes are matched here (``approvals.totp``); whether a matched step is still unused, the
failure count and the lock are decided by one script per attempt (``approvals.store.totp``).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from approvals.store.outcomes import TotpResult
from approvals.store.totp import Purpose, TotpOutcome
from approvals.totp import (
    confirm_steps,
    is_well_formed,
    match_step,
    new_secret,
    provisioning_uri,
    qr_svg,
)
from gateway.auth import require_key
from gateway.bodies import NoBody, TotpCode, TotpConfirm, path_user_id, read_body
from gateway.endings import respond_to_end
from gateway.outcomes import ensure_pending, totp_refused
from gateway.problems import ProblemError
from gateway.responses import json_response
from gateway.services import Services, services, tag_request
from policies.decide import attempt_limit, attempts_left, lock_retry_after

routes = web.RouteTableDef()

_CHANGED_TRIES = 3


def _context(tenant: str, user_id: str) -> str:
    """The sealing context that binds a TOTP secret to its user."""
    return f"{tenant}:{user_id}"


def _enrollment(svc: Services, secret: str, account: str) -> dict[str, Any]:
    issuer = (svc.settings.webauthn_rp_name or "pushgate").replace(":", " ").strip()
    uri = provisioning_uri(secret, account=account, issuer=issuer or "pushgate")
    return {
        "secret": secret,
        "otpauth_uri": uri,
        "qr_svg": qr_svg(uri, title="Scan with your authenticator app"),
        "status": "pending",
    }


def _locked(locked_until_ms: int | None, now: float) -> ProblemError:
    until = None if locked_until_ms is None else locked_until_ms / 1000
    retry = lock_retry_after(until, now)
    headers = {"Retry-After": str(retry)} if retry is not None else {}
    detail = (
        "the user is locked after too many failed codes"
        if retry is not None
        else "the user is locked until an admin unlocks them"
    )
    return ProblemError("user_locked", detail, headers=headers)


def _refusal(outcome: TotpOutcome, now: float) -> ProblemError:
    """The problem for every outcome of a TOTP script except ``ok`` and a failed attempt."""
    if outcome.result is TotpResult.LOCKED:
        return _locked(outcome.locked_until_ms, now)
    return totp_refused(outcome.result)


async def _attempt(
    svc: Services,
    tenant: str,
    user_id: str,
    code: str,
    *,
    purpose: Purpose,
    challenge_id: str = "",
    new_sealed: str = "",
) -> None:
    """One counted attempt with the user's active key; returns only when it is accepted."""
    malformed = not is_well_formed(code)
    for _ in range(_CHANGED_TRIES):
        record, _ = await svc.users.get(tenant, user_id)
        if record is None:
            raise ProblemError("not_found", "no such user")
        now = svc.clock()
        sealed = record.get("totp_secret", "")
        step = None
        if sealed and record.get("totp_status") == "active" and not malformed:
            secret = svc.secret_box.open(sealed, context=_context(tenant, user_id))
            step = match_step(secret, code, now)
        policy = await svc.policy_cache.get(tenant)
        limit = attempt_limit(policy, is_admin=record.get("role") == "admin")
        outcome = await svc.totp.attempt(
            tenant,
            user_id,
            sealed=sealed,
            step=step,
            failure="malformed" if malformed else "invalid",
            limit=limit,
            lockout_ms=policy.lockout_seconds * 1000,  # the script locks from its own now
            purpose=purpose,
            now_ms=int(now * 1000),
            challenge_id=challenge_id,
            new_sealed=new_sealed,
        )
        if outcome.result is TotpResult.OK:
            return
        if outcome.result is TotpResult.INVALID:
            remaining = attempts_left(limit, outcome.failures)
            if malformed:
                raise ProblemError(
                    "code_malformed",
                    "a code is exactly six digits 0-9",
                    attempts_remaining=remaining,
                )
            raise ProblemError(
                "code_invalid", "the code is not valid now", attempts_remaining=remaining
            )
        if outcome.result is not TotpResult.CHANGED:
            raise _refusal(outcome, now)
    raise ProblemError("not_found", "the TOTP key changed during the attempt; try again")


@routes.post("/v1/users/{user_id}/totp")
async def enroll_totp(request: web.Request) -> web.Response:
    """Start a TOTP enrollment: a new key, pending until two codes confirm it."""
    identity = await require_key(request)
    user_id = path_user_id(request)
    await read_body(request, NoBody)
    svc = services(request)
    tag_request(request, tenant=identity.tenant)
    record, _ = await svc.users.get(identity.tenant, user_id)
    policy = await svc.policy_cache.get(identity.tenant)
    secret = new_secret()
    outcome = await svc.totp.enroll(
        identity.tenant,
        user_id,
        sealed=svc.secret_box.seal(secret, context=_context(identity.tenant, user_id)),
        period_days=policy.enrollment_period_days,
    )
    if outcome.result is not TotpResult.OK:
        raise _refusal(outcome, svc.clock())
    account = (record or {}).get("email") or user_id
    return json_response(_enrollment(svc, secret, account), status=201)


@routes.post("/v1/users/{user_id}/totp/confirm")
async def confirm_totp(request: web.Request) -> web.Response:
    """Activate the pending key with two consecutive codes (both steps are used up)."""
    identity = await require_key(request)
    user_id = path_user_id(request)
    body = await read_body(request, TotpConfirm)
    svc = services(request)
    tag_request(request, tenant=identity.tenant)
    malformed = not all(is_well_formed(c) for c in body.codes)
    for _ in range(_CHANGED_TRIES):
        record, _ = await svc.users.get(identity.tenant, user_id)
        if record is None:
            raise ProblemError("not_found", "no such user")
        now = svc.clock()
        sealed = record.get("totp_secret", "")
        steps = None
        if sealed and record.get("totp_status") == "pending" and not malformed:
            secret = svc.secret_box.open(sealed, context=_context(identity.tenant, user_id))
            steps = confirm_steps(secret, body.codes, now)
        outcome = await svc.totp.confirm(
            identity.tenant, user_id, sealed=sealed, steps=steps, now_ms=int(now * 1000)
        )
        if outcome.result is TotpResult.OK:
            return json_response({"status": "active"})
        if outcome.result is TotpResult.INVALID and malformed:
            raise ProblemError("code_malformed", "a code is exactly six digits 0-9")
        if outcome.result is TotpResult.INVALID:
            raise ProblemError(
                "code_invalid", "send two consecutive codes, oldest first, as the app shows them"
            )
        if outcome.result is not TotpResult.CHANGED:
            raise _refusal(outcome, now)
    raise ProblemError("not_found", "the TOTP key changed during confirmation; try again")


@routes.post("/v1/users/{user_id}/totp/verify")
async def verify_totp(request: web.Request) -> web.Response:
    """Check a code: 200 allow, or the reason it was refused (failures are counted)."""
    identity = await require_key(request)
    user_id = path_user_id(request)
    body = await read_body(request, TotpCode)
    svc = services(request)
    tag_request(request, tenant=identity.tenant)
    await _attempt(svc, identity.tenant, user_id, body.code, purpose="verify")
    return json_response({"result": "allow"})


@routes.post("/v1/challenges/{challenge_id}/totp")
async def challenge_totp(request: web.Request) -> web.Response:
    """Fallback inside a pending push challenge: a valid code approves it (method totp)."""
    identity = await require_key(request)
    body = await read_body(request, TotpCode)
    svc = services(request)
    record = await svc.challenges.get(request.match_info["challenge_id"])
    if record is None or record.tenant != identity.tenant:
        raise ProblemError("not_found", "no such challenge")
    tag_request(request, tenant=identity.tenant, challenge_id=record.id)
    ensure_pending(record, svc.now_ms())
    await _attempt(
        svc,
        identity.tenant,
        record.user_id,
        body.code,
        purpose="challenge",
        challenge_id=record.id,
    )
    policy = await svc.policy_cache.get(identity.tenant)
    outcome = await svc.challenges.end(
        record,
        status="approved",
        reason=None,
        method="totp",
        retention_s=policy.result_retention_seconds,
        owned_by=identity.tenant,
    )
    return respond_to_end(svc, outcome, counted="approved")


@routes.post("/v1/users/{user_id}/totp/reset")
async def reset_totp(request: web.Request) -> web.Response:
    """With a current valid code, replace the key by a new pending enrollment."""
    identity = await require_key(request)
    user_id = path_user_id(request)
    body = await read_body(request, TotpCode)
    svc = services(request)
    tag_request(request, tenant=identity.tenant)
    secret = new_secret()
    sealed = svc.secret_box.seal(secret, context=_context(identity.tenant, user_id))
    await _attempt(svc, identity.tenant, user_id, body.code, purpose="reset", new_sealed=sealed)
    record, _ = await svc.users.get(identity.tenant, user_id)
    account = (record or {}).get("email") or user_id
    return json_response(_enrollment(svc, secret, account), status=201)


@routes.delete("/v1/users/{user_id}/totp")
async def remove_totp(request: web.Request) -> web.Response:
    """Admin: remove the user's TOTP key (pending or active)."""
    identity = await require_key(request, "admin")
    user_id = path_user_id(request)
    svc = services(request)
    tag_request(request, tenant=identity.tenant)
    if not await svc.totp.remove(identity.tenant, user_id):
        raise ProblemError("not_found", "the user has no TOTP key")
    return web.Response(status=204)
