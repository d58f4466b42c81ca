"""Number matching: the number the portal shows and the user types on the phone."""

from __future__ import annotations

import hmac
import secrets


def new_number(digits: int) -> str:
    """A uniformly random number with exactly ``digits`` digits and no leading zero."""
    low = 10 ** (digits - 1)
    return str(low + secrets.randbelow(9 * low))


def number_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of the typed number with the challenge's number."""
    if given is None:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
