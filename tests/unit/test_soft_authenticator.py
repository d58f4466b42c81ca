"""SoftAuthenticator against the real py_webauthn verifiers."""

from __future__ import annotations

import json

import pytest
from webauthn import (
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes
from webauthn.helpers.exceptions import (
    InvalidAuthenticationResponse,
    InvalidRegistrationResponse,
)
from webauthn.helpers.structs import AttestationFormat, PublicKeyCredentialDescriptor
from webauthn.registration.verify_registration_response import VerifiedRegistration

from approvals.binding import decision_challenge
from pushgate.devicekit.authenticator import AuthenticatorError, SoftAuthenticator, b64url

RP_ID = "pushgate.example"
ORIGIN = "https://pushgate.example"
CHALLENGE = b"registration-challenge-0123456789"


def creation_options(
    exclude_credentials: list[PublicKeyCredentialDescriptor] | None = None,
) -> dict[str, object]:
    """Creation options as the server sends them: py_webauthn's JSON, parsed."""
    options = generate_registration_options(
        rp_id=RP_ID,
        rp_name="pushgate",
        user_id=b"user-handle-alice",
        user_name="alice",
        challenge=CHALLENGE,
        exclude_credentials=exclude_credentials,
    )
    parsed: dict[str, object] = json.loads(options_to_json(options))
    return parsed


def verify_registration(
    credential: dict[str, object], *, origin: str = ORIGIN
) -> VerifiedRegistration:
    """Verify a registration the way the server does."""
    return verify_registration_response(
        credential=credential,
        expected_challenge=CHALLENGE,
        expected_rp_id=RP_ID,
        expected_origin=origin,
        require_user_verification=True,
    )


def registered(*, use_sign_count: bool = True) -> tuple[SoftAuthenticator, VerifiedRegistration]:
    """A fresh authenticator registered with the RP, and the server's record of it."""
    authenticator = SoftAuthenticator.generate(origin=ORIGIN, use_sign_count=use_sign_count)
    return authenticator, verify_registration(authenticator.register(creation_options()))


def verify_answer(
    assertion: dict[str, object],
    registration: VerifiedRegistration,
    expected_challenge: bytes,
    *,
    sign_count: int = 0,
    origin: str | list[str] = ORIGIN,
) -> int:
    """Verify an assertion the way the server does; return the new sign count."""
    verified = verify_authentication_response(
        credential=assertion,
        expected_challenge=expected_challenge,
        expected_rp_id=RP_ID,
        expected_origin=origin,
        credential_public_key=registration.credential_public_key,
        credential_current_sign_count=sign_count,
        require_user_verification=True,
    )
    return verified.new_sign_count


def test_registration_passes_py_webauthn_with_user_verification_required() -> None:
    """A registration answer verifies with require_user_verification=True."""
    authenticator, registration = registered()
    assert registration.credential_id == authenticator.credential_id
    assert registration.user_verified
    assert registration.sign_count == 0


def test_registration_uses_none_attestation_and_zero_aaguid() -> None:
    """The attestation is format "none" with an all-zero AAGUID and the COSE key we hold."""
    authenticator, registration = registered()
    assert registration.fmt == AttestationFormat.NONE
    assert registration.aaguid == "00000000-0000-0000-0000-000000000000"
    assert registration.credential_public_key == authenticator.public_key_cose()


def test_registration_client_data_is_a_create_ceremony_for_our_origin() -> None:
    """clientDataJSON carries type webauthn.create, the challenge, the origin, crossOrigin false."""
    authenticator = SoftAuthenticator.generate(origin=ORIGIN)
    credential = authenticator.register(creation_options())
    client_data = json.loads(base64url_to_bytes(credential["response"]["clientDataJSON"]))
    assert client_data == {
        "type": "webauthn.create",
        "challenge": b64url(CHALLENGE),
        "origin": ORIGIN,
        "crossOrigin": False,
    }


def test_registration_without_user_verification_is_rejected_when_required() -> None:
    """An authenticator without UV produces a registration the strict verifier rejects."""
    authenticator = SoftAuthenticator.generate(origin=ORIGIN, user_verification=False)
    with pytest.raises(InvalidRegistrationResponse, match="User verification"):
        verify_registration(authenticator.register(creation_options()))


def test_registration_refuses_an_already_registered_credential() -> None:
    """A credential listed in excludeCredentials is not registered twice."""
    authenticator = SoftAuthenticator.generate(origin=ORIGIN)
    excluded = [PublicKeyCredentialDescriptor(id=authenticator.credential_id)]
    with pytest.raises(AuthenticatorError, match="already registered"):
        authenticator.register(creation_options(exclude_credentials=excluded))


def test_registration_refuses_options_for_another_rp() -> None:
    """An authenticator pinned to one RP id refuses creation options for another."""
    authenticator = SoftAuthenticator.generate(origin=ORIGIN, rp_id="other.example")
    with pytest.raises(AuthenticatorError, match=r"other\.example"):
        authenticator.register(creation_options())


def test_assertion_over_decision_binding_verifies() -> None:
    """An assertion over the SPEC §3 binding verifies with that digest as expected challenge."""
    authenticator, registration = registered()
    binding = decision_challenge("nonce-1", "approve", "47")
    assertion = authenticator.assert_challenge(binding)
    assert verify_answer(assertion, registration, binding) == 1
    client_data = json.loads(base64url_to_bytes(assertion["response"]["clientDataJSON"]))
    assert client_data["type"] == "webauthn.get"
    assert client_data["challenge"] == b64url(binding)
    assert base64url_to_bytes(assertion["response"]["userHandle"]) == b"user-handle-alice"


def test_sign_count_grows_by_one_per_assertion() -> None:
    """Each assertion reports the previous count plus one and passes the counter check."""
    authenticator, registration = registered()
    count = 0
    for round_ in range(1, 4):
        binding = decision_challenge(f"nonce-{round_}", "deny", None)
        count = verify_answer(
            authenticator.assert_challenge(binding), registration, binding, sign_count=count
        )
        assert count == round_ == authenticator.sign_count


def test_replayed_assertion_fails_the_sign_count_check() -> None:
    """Replaying an accepted assertion fails once the server stored its count."""
    authenticator, registration = registered()
    binding = decision_challenge("nonce-1", "approve", None)
    assertion = authenticator.assert_challenge(binding)
    count = verify_answer(assertion, registration, binding)
    with pytest.raises(InvalidAuthenticationResponse, match="sign count"):
        verify_answer(assertion, registration, binding, sign_count=count)


def test_static_counter_stays_zero_and_still_verifies() -> None:
    """With use_sign_count=False every assertion reports 0, which the verifier accepts."""
    authenticator, registration = registered(use_sign_count=False)
    for nonce in ("a", "b"):
        binding = decision_challenge(nonce, "approve", None)
        assert verify_answer(authenticator.assert_challenge(binding), registration, binding) == 0


def test_assertion_is_rejected_for_another_decision() -> None:
    """An approve assertion does not verify against the deny binding of the same nonce."""
    authenticator, registration = registered()
    assertion = authenticator.assert_challenge(decision_challenge("nonce-1", "approve", "47"))
    with pytest.raises(InvalidAuthenticationResponse, match="challenge"):
        verify_answer(assertion, registration, decision_challenge("nonce-1", "deny", None))


def test_signature_does_not_cover_a_rewritten_decision() -> None:
    """Rewriting clientDataJSON to claim fraud instead of approve breaks the signature."""
    authenticator, registration = registered()
    assertion = authenticator.assert_challenge(decision_challenge("nonce-1", "approve", None))
    fraud = decision_challenge("nonce-1", "fraud", None)
    forged_client_data = {
        "type": "webauthn.get",
        "challenge": b64url(fraud),
        "origin": ORIGIN,
        "crossOrigin": False,
    }
    raw = json.dumps(forged_client_data, separators=(",", ":")).encode()
    assertion["response"]["clientDataJSON"] = b64url(raw)
    with pytest.raises(InvalidAuthenticationResponse, match="signature"):
        verify_answer(assertion, registration, fraud)


def test_json_round_trip_keeps_key_and_counter() -> None:
    """An authenticator restored from to_json() still verifies and continues its count."""
    authenticator, registration = registered()
    first = decision_challenge("nonce-1", "approve", None)
    count = verify_answer(authenticator.assert_challenge(first), registration, first)
    restored = SoftAuthenticator.from_json(json.loads(json.dumps(authenticator.to_json())))
    second = decision_challenge("nonce-2", "approve", None)
    assertion = restored.assert_challenge(second)
    assert verify_answer(assertion, registration, second, sign_count=count) == count + 1
    assert restored.to_json()["credential_id"] == authenticator.credential_id_b64


def test_assertion_for_another_origin_is_rejected() -> None:
    """The same credential asserting from a foreign origin fails the origin check."""
    authenticator, registration = registered()
    state = authenticator.to_json() | {"origin": "https://evil.example"}
    elsewhere = SoftAuthenticator.from_json(state)
    binding = decision_challenge("nonce-1", "approve", None)
    with pytest.raises(InvalidAuthenticationResponse, match="origin"):
        verify_answer(elsewhere.assert_challenge(binding), registration, binding)


def test_native_app_origin_verifies_against_an_origin_list() -> None:
    """A phone app origin (android:apk-key-hash:...) with an explicit RP id verifies."""
    app_origin = "android:apk-key-hash:q1w2e3r4t5y6"
    authenticator = SoftAuthenticator.generate(origin=app_origin, rp_id=RP_ID)
    origins = [ORIGIN, app_origin]
    registration = verify_registration_response(
        credential=authenticator.register(creation_options()),
        expected_challenge=CHALLENGE,
        expected_rp_id=RP_ID,
        expected_origin=origins,
        require_user_verification=True,
    )
    binding = decision_challenge("nonce-1", "fraud", None)
    assertion = authenticator.assert_challenge(binding)
    assert verify_answer(assertion, registration, binding, origin=origins) == 1
