"""Sealing TOTP secrets at rest (SPEC §2): AES-256-GCM bound to the owning record."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from approvals.secretbox import SecretBox, SecretBoxError, new_key_setting

KEY = bytes(range(32))
BOX = SecretBox(KEY)
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
ALICE = "tn_1:alice"

texts = st.text(st.characters(exclude_categories=["Cs"]))
contexts = st.text(st.characters(exclude_categories=["Cs"]), min_size=1)


def _raw(token: str) -> bytes:
    body = token.removeprefix("v1.")
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def _token(raw: bytes) -> str:
    return "v1." + base64.urlsafe_b64encode(raw).decode().rstrip("=")


@given(plaintext=texts, context=contexts)
def test_sealed_text_opens_with_same_key_and_context(plaintext: str, context: str) -> None:
    """Any text sealed for a context opens again, unchanged, for that context."""
    assert BOX.open(BOX.seal(plaintext, context=context), context=context) == plaintext


def test_token_is_versioned_url_safe_and_sized() -> None:
    """A token is "v1." + unpadded base64url of 12-byte nonce, ciphertext and 16-byte tag."""
    token = BOX.seal(SECRET, context=ALICE)
    assert re.fullmatch(r"v1\.[A-Za-z0-9_-]+", token)
    assert len(_raw(token)) == 12 + len(SECRET) + 16


def test_each_seal_uses_a_fresh_nonce() -> None:
    """Sealing the same secret twice gives different tokens with different nonces."""
    first, second = BOX.seal(SECRET, context=ALICE), BOX.seal(SECRET, context=ALICE)
    assert first != second
    assert _raw(first)[:12] != _raw(second)[:12]


def test_token_does_not_contain_the_secret() -> None:
    """The plaintext is not visible in the token."""
    token = BOX.seal(SECRET, context=ALICE)
    assert SECRET not in token
    assert SECRET.encode() not in _raw(token)


def test_secret_moved_to_another_users_record_does_not_open() -> None:
    """A token copied into another user's (or tenant's) record fails to open."""
    token = BOX.seal(SECRET, context=ALICE)
    for other in ("tn_1:bob", "tn_2:alice", "tn_1:alice ", "tn_1"):
        with pytest.raises(SecretBoxError, match="wrong record"):
            BOX.open(token, context=other)


def test_wrong_key_does_not_open() -> None:
    """A token sealed under one key does not open under another."""
    token = BOX.seal(SECRET, context=ALICE)
    with pytest.raises(SecretBoxError, match="PUSHGATE_SECRET_KEY"):
        SecretBox(bytes(32)).open(token, context=ALICE)


@given(data=st.data())
def test_any_altered_byte_does_not_open(data: st.DataObject) -> None:
    """Changing any byte of nonce, ciphertext or tag makes the token fail to open."""
    raw = bytearray(_raw(BOX.seal(SECRET, context=ALICE)))
    index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    raw[index] ^= data.draw(st.integers(min_value=1, max_value=255))
    with pytest.raises(SecretBoxError):
        BOX.open(_token(bytes(raw)), context=ALICE)


def test_truncated_token_does_not_open() -> None:
    """Dropping the last byte of the tag makes the token fail to open."""
    raw = _raw(BOX.seal(SECRET, context=ALICE))
    with pytest.raises(SecretBoxError):
        BOX.open(_token(raw[:-1]), context=ALICE)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "v1.",
        "v1",
        "v2." + "A" * 60,
        "V1." + "A" * 60,
        "v1.!!!!",
        "v1.A",
        "v1.AAAA",
        "v1.é" * 20,
    ],
)
def test_malformed_tokens_raise_secretbox_error(token: str) -> None:
    """Malformed tokens raise SecretBoxError (a ValueError), never another exception."""
    with pytest.raises(SecretBoxError):
        BOX.open(token, context=ALICE)


@given(token=st.text())
def test_arbitrary_text_never_opens(token: str) -> None:
    """Arbitrary text is refused with SecretBoxError."""
    with pytest.raises(SecretBoxError):
        BOX.open(token, context=ALICE)


def test_empty_context_is_refused() -> None:
    """Sealing or opening without naming the owning record is a programming error."""
    with pytest.raises(ValueError, match="context"):
        BOX.seal(SECRET, context="")
    with pytest.raises(ValueError, match="context"):
        BOX.open(BOX.seal(SECRET, context=ALICE), context="")


def test_from_setting_accepts_base64_of_32_bytes() -> None:
    """PUSHGATE_SECRET_KEY in standard base64 builds a box equivalent to the raw key."""
    box = SecretBox.from_setting(base64.b64encode(KEY).decode())
    assert box.open(BOX.seal(SECRET, context=ALICE), context=ALICE) == SECRET


def test_new_key_setting_is_a_valid_fresh_setting() -> None:
    """A generated setting is base64 of 32 bytes, accepted by from_setting, and random."""
    setting = new_key_setting()
    assert len(base64.b64decode(setting, validate=True)) == 32
    SecretBox.from_setting(setting)
    assert setting != new_key_setting()


@pytest.mark.parametrize("length", [0, 16, 24, 31, 33, 64])
def test_from_setting_rejects_wrong_length(length: int) -> None:
    """A key of the wrong size is refused with a message naming the setting and the size."""
    setting = base64.b64encode(bytes(length)).decode()
    with pytest.raises(ValueError, match=rf"PUSHGATE_SECRET_KEY.*32 bytes, got {length} bytes"):
        SecretBox.from_setting(setting)


@pytest.mark.parametrize("setting", ["not base64!", "AAAA=AAA", "é" * 44, "A" * 43])
def test_from_setting_rejects_non_base64(setting: str) -> None:
    """Text that is not base64 is refused with a message naming the setting."""
    with pytest.raises(ValueError, match="PUSHGATE_SECRET_KEY must be base64"):
        SecretBox.from_setting(setting)


def test_constructor_rejects_wrong_key_length() -> None:
    """A raw key must be exactly 32 bytes (AES-256)."""
    with pytest.raises(ValueError, match="32 bytes"):
        SecretBox(bytes(16))


def test_repr_does_not_show_the_key() -> None:
    """The box's repr hides the key, so logging it leaks nothing."""
    setting = base64.b64encode(KEY).decode()
    shown = repr(SecretBox.from_setting(setting))
    assert setting not in shown
    assert KEY.hex() not in shown
