"""TOTP rules (SPEC §5): RFC 6238, SHA-1, six digits, 30-second steps, ±1 step.

Pure functions over a base32 secret and an explicit ``now`` (float epoch seconds). Replay
protection is the caller's: it records every accepted step per user and refuses a step it
has seen, which this module makes easy by answering with the matched step, not a boolean.
"""

from __future__ import annotations

import base64
import hmac
import io
import re
import secrets
from collections.abc import Sequence
from typing import Final, TypeGuard

import pyotp
import segno

STEP_SECONDS: Final = 30
DIGITS: Final = 6
WINDOW: Final = 1
SECRET_BYTES: Final = 20  # 160 bits, the RFC 4226 recommendation for SHA-1

_CODE = re.compile(r"[0-9]{6}")


def new_secret() -> str:
    """A fresh 160-bit secret as unpadded base32 (32 characters), the manual entry key."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def provisioning_uri(secret: str, *, account: str, issuer: str) -> str:
    """The ``otpauth://totp/Issuer:account?secret=...&issuer=...`` URI authenticator apps scan.

    Raises ValueError if ``issuer`` contains a colon (it would split the label).
    """
    uri = pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)
    return str(uri)


def qr_svg(uri: str, *, title: str = "QR code for your authenticator app") -> str:
    """``uri`` as a QR code in standalone SVG text: no fixed size (viewBox only), titled."""
    buffer = io.BytesIO()
    segno.make(uri, error="m", micro=False).save(
        buffer, kind="svg", xmldecl=False, svgns=True, nl=False, omitsize=True, title=title
    )
    return buffer.getvalue().decode("utf-8")


def is_well_formed(code: object) -> TypeGuard[str]:
    """True only for a string of exactly six ASCII digits (no spaces, signs or other scripts)."""
    return isinstance(code, str) and _CODE.fullmatch(code) is not None


def step_at(now: float) -> int:
    """The RFC 6238 time step (counter) that contains ``now``."""
    return int(now // STEP_SECONDS)


def step_usable_until(step: int, *, window: int = WINDOW) -> float:
    """The moment after which ``step`` can no longer match; a record of it may expire then."""
    return float((step + window + 1) * STEP_SECONDS)


def _code_at(totp: pyotp.TOTP, step: int) -> str:
    return str(totp.generate_otp(step))


def match_step(secret: str, code: str, now: float, *, window: int = WINDOW) -> int | None:
    """The step within ±``window`` of ``now`` whose code is ``code``, or None.

    A malformed ``code`` never matches. Every candidate is compared in constant time and
    all candidates are tried, so timing reveals neither the code nor which step matched.
    If (with odds of about one in a million) two steps share the code, the earliest wins.
    """
    if window < 0:
        raise ValueError("window must be >= 0")
    if not is_well_formed(code):
        return None
    totp = pyotp.TOTP(secret)
    current = step_at(now)
    matched: int | None = None
    for step in range(current - window, current + window + 1):
        if step < 0:
            continue
        if hmac.compare_digest(_code_at(totp, step), code) and matched is None:
            matched = step
    return matched


def confirm_steps(secret: str, codes: Sequence[str], now: float) -> tuple[int, int] | None:
    """Steps ``(n, n + 1)`` if ``codes`` are two consecutive codes in order, else None.

    Both steps must lie within ±1 step of ``now``. One code, more than two, two equal codes,
    codes out of order or further apart, and any malformed code all give None.
    """
    if len(codes) != 2:
        return None
    first, second = codes
    if not (is_well_formed(first) and is_well_formed(second)) or first == second:
        return None
    totp = pyotp.TOTP(secret)
    current = step_at(now)
    found: tuple[int, int] | None = None
    for step in range(current - WINDOW, current + WINDOW):
        if step < 0:
            continue
        first_ok = hmac.compare_digest(_code_at(totp, step), first)
        second_ok = hmac.compare_digest(_code_at(totp, step + 1), second)
        if first_ok and second_ok and found is None:
            found = (step, step + 1)
    return found


def current_code(secret: str, now: float) -> str:
    """The code an authenticator app shows at ``now`` (for the demo device simulator)."""
    return _code_at(pyotp.TOTP(secret), step_at(now))
