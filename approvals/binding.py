"""Decision binding: the WebAuthn challenge that makes a device's signature cover its answer.

SPEC §3: the assertion's ``challenge`` is ``base64url(SHA-256("pushgate/v1|" + nonce + "|" +
decision + "|" + (number or "")))``. This module computes the raw digest; the WebAuthn client
data carries its base64url form.
"""

from __future__ import annotations

import hashlib
from typing import Final, Literal, get_args

Decision = Literal["approve", "deny", "fraud"]
DECISIONS: Final[tuple[Decision, ...]] = get_args(Decision)
BINDING_PREFIX: Final = "pushgate/v1"


def decision_challenge(nonce: str, decision: str, number: str | None) -> bytes:
    """Return the 32-byte challenge a device signs to answer ``decision`` to ``nonce``.

    ``number`` ``None`` and ``""`` bind the same digest. The nonce must not contain ``|``
    and the decision must be one of :data:`DECISIONS`, which keeps the encoding injective.
    """
    if decision not in DECISIONS:
        raise ValueError(f"unknown decision {decision!r}")
    if "|" in nonce:
        raise ValueError("nonce must not contain '|'")
    message = "|".join((BINDING_PREFIX, nonce, decision, number or ""))
    return hashlib.sha256(message.encode("utf-8")).digest()
