"""Push enrollment codes (SPEC §4): single use, 10 minutes, stored only as a digest.

A code is ``en`` + four lowercase hex digits of the user's shard + 192 random bits in
base64url (32 characters), so any replica can find the shard's keys from the code alone.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Final
from urllib.parse import quote, urlencode

ENROLLMENT_CODE_TTL_SECONDS: Final = 600
RANDOM_BYTES: Final = 24
MAX_SHARD: Final = 0xFFFF

_CODE = re.compile(r"en([0-9a-f]{4})[A-Za-z0-9_-]{32}")


def new_enrollment_code(shard: int) -> str:
    """A fresh enrollment code for a user on ``shard`` (URL-safe, no '.', 192 random bits)."""
    if not 0 <= shard <= MAX_SHARD:
        raise ValueError(f"shard must be in 0..{MAX_SHARD}")
    return f"en{shard:04x}{secrets.token_urlsafe(RANDOM_BYTES)}"


def shard_of_code(code: object, *, shards: int | None = None) -> int | None:
    """The shard encoded in ``code``, or None if it is not a well-formed code. Never raises.

    With ``shards`` given, a shard number outside ``0..shards-1`` also gives None.
    """
    if not isinstance(code, str):
        return None
    match = _CODE.fullmatch(code)
    if match is None:
        return None
    shard = int(match.group(1), 16)
    if shards is not None and shard >= shards:
        return None
    return shard


def code_digest(code: str) -> str:
    """SHA-256 hex of ``code``: what is stored and looked up, never the code itself.

    Check the code with :func:`shard_of_code` first; that also rules out unencodable text.
    """
    return hashlib.sha256(code.encode()).hexdigest()


def enroll_url(server: str, code: str) -> str:
    """The ``pushgate://enroll?server=...&code=...`` link an app opens (values percent-encoded)."""
    return "pushgate://enroll?" + urlencode({"server": server, "code": code}, quote_via=quote)
