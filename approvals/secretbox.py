"""Encryption of TOTP secrets at rest: AES-256-GCM under ``PUSHGATE_SECRET_KEY`` (SPEC §2).

A sealed secret is ``"v1." + base64url(nonce || ciphertext || tag)`` (unpadded) with a
random 96-bit nonce. The caller's ``context`` (for example ``"tenant:user"``) is bound in as
associated data, so a sealed secret copied into another user's record does not open.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
_VERSION: Final = "v1"
_PREFIX: Final = _VERSION + "."


class SecretBoxError(ValueError):
    """A sealed secret did not open: wrong key, wrong context, altered or malformed token."""


def new_key_setting() -> str:
    """A fresh random key in the ``PUSHGATE_SECRET_KEY`` format (standard base64, 32 bytes)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def _associated_data(context: str) -> bytes:
    if not context:
        raise ValueError("context must name the record the secret belongs to")
    return f"pushgate/totp/{_VERSION}|{context}".encode()


class SecretBox:
    """Seals and opens short strings with one AES-256-GCM key. Never shows the key."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"secret key must be {KEY_BYTES} bytes, got {len(key)}")
        self._aead = AESGCM(key)

    @classmethod
    def from_setting(cls, b64: str) -> SecretBox:
        """Build from the ``PUSHGATE_SECRET_KEY`` value: standard base64 of exactly 32 bytes."""
        try:
            key = base64.b64decode(b64.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("PUSHGATE_SECRET_KEY must be base64 of 32 random bytes") from None
        if len(key) != KEY_BYTES:
            raise ValueError(
                f"PUSHGATE_SECRET_KEY must be base64 of {KEY_BYTES} bytes, got {len(key)} bytes"
            )
        return cls(key)

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def seal(self, plaintext: str, *, context: str) -> str:
        """Encrypt ``plaintext`` for the record named by ``context``; a new nonce every call."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), _associated_data(context))
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")

    def open(self, token: str, *, context: str) -> str:
        """Decrypt a token from :meth:`seal` with the same ``context``.

        Raises SecretBoxError if the token is malformed, was altered, was sealed under
        another key, or belongs to another context.
        """
        associated = _associated_data(context)
        if not token.startswith(_PREFIX):
            raise SecretBoxError(f"sealed secret is not in the {_VERSION} format")
        body = token[len(_PREFIX) :]
        try:
            raw = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise SecretBoxError("sealed secret is not valid base64url") from None
        if len(raw) < NONCE_BYTES + 16:
            raise SecretBoxError("sealed secret is too short")
        try:
            plain = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated)
        except InvalidTag:
            raise SecretBoxError(
                "sealed secret does not open: wrong PUSHGATE_SECRET_KEY, wrong record, "
                "or the stored value was altered"
            ) from None
        return plain.decode()
