"""docs/device-client.md holds: its test vectors verify as the server verifies, and its
Python example enrolls, answers and rotates the push token against a real gateway."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from webauthn import verify_authentication_response
from webauthn.helpers import base64url_to_bytes

from approvals.binding import decision_challenge
from gateway.app import create_app
from pushgate.devicekit import SoftAuthenticator
from pushgate.embedded import free_port
from tests.conftest import TestClock, make_settings
from tests.integration.conftest import make_tenant
from tests.portal import Portal

DOC = Path(__file__).resolve().parents[2] / "docs" / "device-client.md"


def _doc_block(after: str, language: str) -> str:
    text = DOC.read_text()
    start = text.index(after)
    found = re.search(rf"```{language}\n(.*?)\n```", text[start:], re.DOTALL)
    assert found, f"no {language} block after {after!r}"
    return found.group(1)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_vectors_are_what_the_server_accepts() -> None:
    """Each derived field follows from the inputs as the page says, the signature verifies
    over them, and py_webauthn (the server's check) accepts the response with counter 7."""
    v: dict[str, Any] = json.loads(_doc_block("<!-- test-vectors -->", "json"))
    message = "|".join(("pushgate/v1", v["nonce"], v["decision"], v["number"]))
    assert message == v["binding_message"]
    challenge = hashlib.sha256(message.encode()).digest()
    assert challenge == decision_challenge(v["nonce"], v["decision"], v["number"])
    assert _b64url(challenge) == v["challenge_b64url"]
    client_data = json.dumps(
        {
            "type": "webauthn.get",
            "challenge": v["challenge_b64url"],
            "origin": v["origin"],
            "crossOrigin": False,
        },
        separators=(",", ":"),
    ).encode()
    assert client_data.decode() == v["client_data_json"]
    auth_data = hashlib.sha256(v["rp_id"].encode()).digest() + struct.pack(
        ">BI", int(v["flags_hex"], 16), v["sign_count"]
    )
    assert auth_data.hex() == v["authenticator_data_hex"]
    signed = auth_data + hashlib.sha256(client_data).digest()
    assert hashlib.sha256(signed).hexdigest() == v["signed_data_sha256_hex"]

    key = ec.derive_private_key(int(v["private_key_scalar_hex"], 16), ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    assert (f"{numbers.x:064x}", f"{numbers.y:064x}") == (
        v["public_key_x_hex"],
        v["public_key_y_hex"],
    )
    public = ec.EllipticCurvePublicNumbers(numbers.x, numbers.y, ec.SECP256R1()).public_key()
    public.verify(base64url_to_bytes(v["signature_der_b64url"]), signed, ec.ECDSA(hashes.SHA256()))

    assertion = v["response_body"]["assertion"]
    assert base64url_to_bytes(assertion["response"]["clientDataJSON"]) == client_data
    assert base64url_to_bytes(assertion["response"]["authenticatorData"]) == auth_data
    verified = verify_authentication_response(
        credential=assertion,
        expected_challenge=challenge,
        expected_rp_id=v["rp_id"],
        expected_origin=[v["origin"]],
        credential_public_key=base64url_to_bytes(v["public_key_cose_b64url"]),
        credential_current_sign_count=v["previous_sign_count"],
        require_user_verification=True,
    )
    assert verified.new_sign_count == v["sign_count"]

    reference = SoftAuthenticator(
        private_key=key,
        credential_id=base64url_to_bytes(v["credential_id_b64url"]),
        origin=v["origin"],
        rp_id=v["rp_id"],
        sign_count=v["previous_sign_count"],
    )
    assert _b64url(reference.public_key_cose()) == v["public_key_cose_b64url"]
    produced = reference.assert_challenge(challenge)["response"]
    assert produced["clientDataJSON"] == assertion["response"]["clientDataJSON"]
    assert produced["authenticatorData"] == assertion["response"]["authenticatorData"]


async def test_the_python_example_enrolls_answers_and_rotates(
    redis_url: str,
    clock: TestClock,
    tmp_path: Path,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> None:
    """The page's example, run as written: enroll from the link, approve with the number,
    answer a second challenge from the reloaded state (the counter kept growing), rotate."""
    port = free_port()
    settings = make_settings(redis_url, public_url=f"http://localhost:{port}")
    await aiohttp_server(create_app(settings, clock=clock), port=port)
    tenant = await make_tenant(settings)
    example: dict[str, Any] = {}
    exec(compile(_doc_block("## The same with", "python"), str(DOC), "exec"), example)  # noqa: S102
    state = tmp_path / "device.json"
    async with aiohttp.ClientSession() as session:
        portal = Portal(session, f"http://localhost:{port}", tenant.portal_key)
        offer = await portal.call("POST", "/v1/users/alice/push-enrollments")
        await example["enroll"](offer.body["enroll_url"], state, "fcm-token-1")
        first = (await portal.create_challenge("alice", resource="mail")).body
        assert await example["answer"](state, first["id"], "approve", first["number"]) == (
            "approved"
        )
        counter = json.loads(state.read_text())["authenticator"]["sign_count"]
        second = (await portal.create_challenge("alice", resource="vpn")).body
        assert await example["answer"](state, second["id"], "deny", None) == "denied"
        assert json.loads(state.read_text())["authenticator"]["sign_count"] == counter + 1
        await example["rotate"](state, "fcm-token-2")
        devices = (await portal.call("GET", "/v1/users/alice/devices")).body["items"]
    assert [d["platform"] for d in devices] == ["fcm"]
    assert devices[0]["push_token_valid"] is True
