"""A software WebAuthn authenticator (ES256, attestation "none") that really signs.

Synchronous and free of asyncio/aiohttp, so gevent-based load tests can import it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from typing import Any, Final
from urllib.parse import urlsplit

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

JSONDict = dict[str, Any]

ES256: Final = -7
AAGUID: Final = bytes(16)
FLAG_UP: Final = 0x01
FLAG_UV: Final = 0x04
FLAG_AT: Final = 0x40
_STATE_VERSION: Final = 1


class AuthenticatorError(Exception):
    """The authenticator refuses a ceremony, as a browser would with a DOMException."""


def b64url(data: bytes) -> str:
    """Encode bytes as unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded (or padded) base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _client_data(kind: str, challenge: bytes, origin: str) -> bytes:
    body = {
        "type": kind,
        "challenge": b64url(challenge),
        "origin": origin,
        "crossOrigin": False,
    }
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def _auth_data(rp_id: str, flags: int, sign_count: int) -> bytes:
    rp_id_hash = hashlib.sha256(rp_id.encode("utf-8")).digest()
    return rp_id_hash + struct.pack(">BI", flags, sign_count)


class SoftAuthenticator:
    """One P-256 credential bound to one origin and RP id, persisted with :meth:`to_json`."""

    def __init__(
        self,
        *,
        private_key: ec.EllipticCurvePrivateKey,
        credential_id: bytes,
        origin: str,
        rp_id: str | None = None,
        user_handle: bytes | None = None,
        sign_count: int = 0,
        user_verification: bool = True,
        use_sign_count: bool = True,
    ) -> None:
        """Wrap existing key material; use :meth:`generate` for a fresh authenticator."""
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError("the private key must be on P-256")
        self._key = private_key
        self.credential_id = credential_id
        self.origin = origin
        self.rp_id = rp_id
        self.user_handle = user_handle
        self.sign_count = sign_count
        self.user_verification = user_verification
        self.use_sign_count = use_sign_count

    @classmethod
    def generate(
        cls,
        *,
        origin: str,
        rp_id: str | None = None,
        user_verification: bool = True,
        use_sign_count: bool = True,
    ) -> SoftAuthenticator:
        """Create an authenticator with a new key and a random 32-byte credential id.

        Without ``rp_id`` the RP id is taken from the first registration's options.
        With ``use_sign_count=False`` the signature counter always reads 0.
        """
        return cls(
            private_key=ec.generate_private_key(ec.SECP256R1()),
            credential_id=secrets.token_bytes(32),
            origin=origin,
            rp_id=rp_id,
            user_verification=user_verification,
            use_sign_count=use_sign_count,
        )

    @property
    def credential_id_b64(self) -> str:
        """The credential id as base64url, the form servers store and list."""
        return b64url(self.credential_id)

    def public_key_cose(self) -> bytes:
        """The credential public key as a CBOR COSE_Key (EC2, P-256, ES256)."""
        numbers = self._key.public_key().public_numbers()
        cose = {
            1: 2,  # kty: EC2
            3: ES256,  # alg
            -1: 1,  # crv: P-256
            -2: numbers.x.to_bytes(32, "big"),
            -3: numbers.y.to_bytes(32, "big"),
        }
        return cbor2.dumps(cose)

    def register(self, options: JSONDict) -> JSONDict:
        """Answer JSON creation options with a registration response JSON dict."""
        try:
            challenge = b64url_decode(options["challenge"])
            user_handle = b64url_decode(options["user"]["id"])
            rp_id = options.get("rp", {}).get("id") or self.rp_id or urlsplit(self.origin).hostname
            algs = [p["alg"] for p in options.get("pubKeyCredParams", [])]
            excluded = {c["id"] for c in options.get("excludeCredentials", [])}
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise AuthenticatorError(f"malformed creation options: {exc!r}") from exc
        if not rp_id:
            raise AuthenticatorError("no RP id in the options and none configured")
        if self.rp_id is not None and rp_id != self.rp_id:
            raise AuthenticatorError(f"options are for RP {rp_id!r}, not {self.rp_id!r}")
        if algs and ES256 not in algs:
            raise AuthenticatorError("the RP does not accept ES256 credentials")
        if self.credential_id_b64 in excluded:
            raise AuthenticatorError("this credential is already registered with the RP")

        self.rp_id = rp_id
        self.user_handle = user_handle
        attested = AAGUID + struct.pack(">H", len(self.credential_id)) + self.credential_id
        auth_data = _auth_data(rp_id, self._flags(FLAG_AT), self.sign_count)
        auth_data += attested + self.public_key_cose()
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = _client_data("webauthn.create", challenge, self.origin)
        return {
            "id": self.credential_id_b64,
            "rawId": self.credential_id_b64,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
        }

    def assert_challenge(self, challenge: bytes) -> JSONDict:
        """Sign ``challenge`` and return an authentication response JSON dict."""
        if self.rp_id is None:
            raise AuthenticatorError("register first, or construct with an rp_id")
        if self.use_sign_count:
            self.sign_count += 1
        auth_data = _auth_data(self.rp_id, self._flags(0), self.sign_count)
        client_data = _client_data("webauthn.get", challenge, self.origin)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = self._key.sign(signed, ec.ECDSA(hashes.SHA256()))
        return {
            "id": self.credential_id_b64,
            "rawId": self.credential_id_b64,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(self.user_handle) if self.user_handle is not None else None,
            },
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
        }

    def _flags(self, extra: int) -> int:
        return FLAG_UP | extra | (FLAG_UV if self.user_verification else 0)

    def to_json(self) -> JSONDict:
        """Serialise key, credential and counter so :meth:`from_json` restores this device."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return {
            "version": _STATE_VERSION,
            "private_key_pem": pem.decode("ascii"),
            "credential_id": self.credential_id_b64,
            "sign_count": self.sign_count,
            "origin": self.origin,
            "rp_id": self.rp_id,
            "user_handle": b64url(self.user_handle) if self.user_handle is not None else None,
            "user_verification": self.user_verification,
            "use_sign_count": self.use_sign_count,
        }

    @classmethod
    def from_json(cls, state: JSONDict) -> SoftAuthenticator:
        """Restore an authenticator saved by :meth:`to_json`."""
        if state.get("version", _STATE_VERSION) != _STATE_VERSION:
            raise ValueError(f"unsupported authenticator state version {state['version']!r}")
        key = serialization.load_pem_private_key(state["private_key_pem"].encode(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the stored key is not an EC private key")
        user_handle = state.get("user_handle")
        return cls(
            private_key=key,
            credential_id=b64url_decode(state["credential_id"]),
            origin=state["origin"],
            rp_id=state.get("rp_id"),
            user_handle=b64url_decode(user_handle) if user_handle is not None else None,
            sign_count=int(state.get("sign_count", 0)),
            user_verification=bool(state.get("user_verification", True)),
            use_sign_count=bool(state.get("use_sign_count", True)),
        )

    def __repr__(self) -> str:
        """Show identity and counter, never the key."""
        return (
            f"SoftAuthenticator(credential_id={self.credential_id_b64!r}, origin={self.origin!r}, "
            f"rp_id={self.rp_id!r}, sign_count={self.sign_count})"
        )
