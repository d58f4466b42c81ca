"""The aiohttp-free devicekit helpers: enroll links, request bodies, import isolation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from webauthn import verify_authentication_response
from webauthn.helpers import bytes_to_base64url

from approvals.binding import decision_challenge
from pushgate.devicekit import DeviceCredentials, SoftAuthenticator, parse_enroll_url
from pushgate.devicekit.answers import sign_response_body
from pushgate.devicekit.authenticator import AuthenticatorError
from pushgate.devicekit.enrollment import enroll_body

ORIGIN = "https://pushgate.example"
RP_ID = "pushgate.example"


def test_enroll_url_yields_server_and_code() -> None:
    """The portal's pushgate://enroll link splits into the decoded server URL and the code."""
    url = "pushgate://enroll?server=https%3A%2F%2Fpush.example%3A8443%2F&code=abc-DEF_123"
    assert parse_enroll_url(url) == ("https://push.example:8443", "abc-DEF_123")


@pytest.mark.parametrize(
    "url",
    [
        "https://enroll?server=https://a.example&code=x",
        "pushgate://other?server=https://a.example&code=x",
        "pushgate://enroll?code=x",
        "pushgate://enroll?server=https://a.example",
        "pushgate://enroll?server=https://a.example&code=x&code=y",
        "pushgate://enroll?server=javascript:alert(1)&code=x",
    ],
)
def test_malformed_enroll_url_is_rejected(url: str) -> None:
    """Links with another scheme or host, or without one server and one code, raise."""
    with pytest.raises(ValueError, match="enroll link"):
        parse_enroll_url(url)


def test_enroll_body_carries_a_registration_and_omits_unset_fields() -> None:
    """The enroll body holds code, credential, platform and name, and no null fields."""
    authenticator = SoftAuthenticator.generate(origin=ORIGIN)
    options = {
        "rp": {"id": RP_ID, "name": "pushgate"},
        "user": {"id": bytes_to_base64url(b"u1"), "name": "alice", "displayName": "alice"},
        "challenge": bytes_to_base64url(b"c" * 32),
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
    }
    body = enroll_body(authenticator, "code-1", options, device_name="Pixel")
    assert set(body) == {"code", "credential", "platform", "device_name"}
    assert body["platform"] == "none"
    assert body["credential"]["id"] == authenticator.credential_id_b64


def test_registration_refuses_options_without_es256() -> None:
    """Creation options that allow only RS256 are refused, as a P-256-only phone would."""
    authenticator = SoftAuthenticator.generate(origin=ORIGIN)
    options = {
        "rp": {"id": RP_ID},
        "user": {"id": "dTE"},
        "challenge": "Yw",
        "pubKeyCredParams": [{"type": "public-key", "alg": -257}],
    }
    with pytest.raises(AuthenticatorError, match="ES256"):
        authenticator.register(options)


def test_signed_response_body_verifies_against_the_binding() -> None:
    """sign_response_body signs the SPEC §3 binding of exactly its decision and number."""
    authenticator = SoftAuthenticator.generate(origin=ORIGIN, rp_id=RP_ID)
    body = sign_response_body(authenticator, "nonce-9", "approve", "47")
    assert set(body) == {"decision", "number", "assertion"}
    verified = verify_authentication_response(
        credential=body["assertion"],
        expected_challenge=decision_challenge("nonce-9", "approve", "47"),
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        credential_public_key=authenticator.public_key_cose(),
        credential_current_sign_count=0,
        require_user_verification=True,
    )
    assert verified.new_sign_count == 1


def test_signed_response_body_leaves_out_a_missing_number() -> None:
    """A deny without a number sends no number field."""
    authenticator = SoftAuthenticator.generate(origin=ORIGIN, rp_id=RP_ID)
    assert "number" not in sign_response_body(authenticator, "n", "deny")


def test_credentials_build_the_device_authorization_and_hide_the_secret() -> None:
    """Credentials give 'Device <id>.<secret>' and never show the secret in repr."""
    creds = DeviceCredentials.from_json({"device_id": "dev_1", "device_secret": "s3cret"})
    assert creds.authorization == "Device dev_1.s3cret"
    assert "s3cret" not in repr(creds)
    assert DeviceCredentials.from_json(creds.to_json()) == creds


def test_authenticator_and_helpers_import_without_aiohttp_or_asyncio() -> None:
    """The package, authenticator and answer helpers load without aiohttp or asyncio."""
    code = (
        "import sys, pushgate.devicekit, pushgate.devicekit.authenticator, "
        "pushgate.devicekit.answers, pushgate.devicekit.enrollment; "
        "bad = {'aiohttp', 'asyncio'} & set(sys.modules); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])
