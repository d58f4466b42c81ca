"""Push enrollment: the portal issues a single-use code, the device registers a credential."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from aiohttp import web
from webauthn import generate_registration_options, options_to_json, verify_registration_response
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from approvals.challenge import rfc3339
from approvals.enrollment import (
    ENROLLMENT_CODE_TTL_SECONDS,
    code_digest,
    enroll_url,
    new_enrollment_code,
    shard_of_code,
)
from approvals.ids import digest, new_device_id, new_secret
from approvals.records import DeviceRecord
from approvals.totp import qr_svg
from gateway.auth import require_key
from gateway.bodies import Enroll, EnrollOptions, NoBody, path_user_id, read_body
from gateway.problems import ProblemError
from gateway.responses import json_response
from gateway.services import Services, services, tag_request

routes = web.RouteTableDef()


@routes.post("/v1/users/{user_id}/push-enrollments")
async def start_push_enrollment(request: web.Request) -> web.Response:
    """Issue a single-use enrollment code (10 minutes) as a link and a QR code."""
    identity = await require_key(request)
    user_id = path_user_id(request)
    await read_body(request, NoBody)
    svc = services(request)
    uk = svc.backend.user_keys(identity.tenant, user_id)
    code = new_enrollment_code(uk.shard)
    enrollment_id = "enr_" + secrets.token_hex(8)
    now_ms = svc.now_ms()
    policy = await svc.policy_cache.get(identity.tenant)
    await svc.devices.start_enrollment(
        tenant=identity.tenant,
        user_id=user_id,
        enrollment_id=enrollment_id,
        code_digest=code_digest(code),
        ttl_s=ENROLLMENT_CODE_TTL_SECONDS,
        period_days=policy.enrollment_period_days,
    )
    url = enroll_url(svc.settings.public_url, code)
    body = {
        "enrollment_id": enrollment_id,
        "user_id": user_id,
        "code": code,
        "enroll_url": url,
        "qr_svg": qr_svg(url, title="Scan with your authenticator app to enroll"),
        "expires_at": rfc3339(now_ms + ENROLLMENT_CODE_TTL_SECONDS * 1000),
    }
    return json_response(body, status=201)


async def _enrollment(svc: Services, code: str) -> tuple[int, str, dict[str, str]]:
    shard = shard_of_code(code, shards=svc.backend.shards)
    if shard is None:
        raise ProblemError("enrollment_code_invalid", "unknown, used or expired enrollment code")
    code_hash = code_digest(code)
    record = await svc.devices.get_enrollment(shard, code_hash)
    if record is None:
        raise ProblemError("enrollment_code_invalid", "unknown, used or expired enrollment code")
    return shard, code_hash, record


@routes.post("/v1/device/enroll/options")
async def enrollment_options(request: web.Request) -> web.Response:
    """WebAuthn registration options for the device that holds an enrollment code."""
    body = await read_body(request, EnrollOptions)
    svc = services(request)
    shard, code_hash, record = await _enrollment(svc, body.code)
    policy = await svc.policy_cache.get(record["tenant"])
    user_handle = hashlib.sha256(f"{record['tenant']}\x00{record['user_id']}".encode()).digest()
    options = generate_registration_options(
        rp_id=svc.settings.webauthn_rp_id,
        rp_name=svc.settings.webauthn_rp_name,
        user_id=user_handle[:32],
        user_name=record["user_id"],
        challenge=secrets.token_bytes(32),
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.DISCOURAGED,
            user_verification=(
                UserVerificationRequirement.REQUIRED
                if policy.require_user_verification
                else UserVerificationRequirement.PREFERRED
            ),
        ),
        timeout=ENROLLMENT_CODE_TTL_SECONDS * 1000,
    )
    offered = await svc.devices.offer_registration(
        shard, code_hash, bytes_to_base64url(options.challenge)
    )
    if not offered:
        raise ProblemError("enrollment_code_invalid", "unknown, used or expired enrollment code")
    return json_response(json.loads(options_to_json(options)))


def _client_challenge(credential: dict[str, Any]) -> str:
    try:
        client_data = json.loads(base64url_to_bytes(credential["response"]["clientDataJSON"]))
        challenge = client_data["challenge"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ProblemError("webauthn_invalid", f"unreadable clientDataJSON: {exc}") from None
    if not isinstance(challenge, str) or len(challenge) > 128:
        raise ProblemError("webauthn_invalid", "clientDataJSON has no usable challenge")
    return challenge


@routes.post("/v1/device/enroll")
async def enroll_device(request: web.Request) -> web.Response:
    """Verify the registration and create the device; the code is consumed exactly once."""
    body = await read_body(request, Enroll)
    svc = services(request)
    shard, code_hash, record = await _enrollment(svc, body.code)
    challenge = _client_challenge(body.credential)
    if record.get(f"rc:{challenge}") != "1":
        raise ProblemError("webauthn_invalid", "the registration answers no options of this code")
    policy = await svc.policy_cache.get(record["tenant"])
    try:
        verified = verify_registration_response(
            credential=body.credential,
            expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=svc.settings.webauthn_rp_id,
            expected_origin=svc.settings.origins,
            require_user_verification=policy.require_user_verification,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise ProblemError("webauthn_invalid", f"registration rejected: {exc}") from None
    device_id = new_device_id(shard)
    device_secret = new_secret()
    now_ms = svc.now_ms()
    device = DeviceRecord(
        id=device_id,
        tenant=record["tenant"],
        user_id=record["user_id"],
        platform=body.platform,
        push_token=body.push_token or "",
        token_valid=True,
        app_bundle_id=body.app_bundle_id or "",
        name=body.device_name or "",
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=bytes_to_base64url(verified.credential_public_key),
        sign_count=verified.sign_count,
        secret_digest=digest(device_secret),
        created_at_ms=now_ms,
    )
    consumed = await svc.devices.consume_enrollment(
        shard=shard, code_digest=code_hash, challenge=challenge, device=device
    )
    if not consumed:
        raise ProblemError("enrollment_code_invalid", "the enrollment code was already used")
    tag_request(request, tenant=record["tenant"])
    return json_response(
        {"device_id": device_id, "device_secret": device_secret, "user_id": record["user_id"]},
        status=201,
    )
