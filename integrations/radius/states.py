"""The RADIUS ``State`` of a number-matching challenge: which push a follow-up request answers.

A State names the pushgate challenge and carries an HMAC over (challenge, NAS, user) with a
key derived from the portal key, so it cannot be forged or moved to another user or NAS, and
any server holding the same key can read it. Each server also accepts a State only once.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections import OrderedDict

_PREFIX = b"pg1."
_TAG_BYTES = 16
_CHALLENGE_ID = re.compile(rb"^[A-Za-z0-9_-]{1,100}$")
#: how long a used State is remembered (longer than any push can stay pending)
USED_MEMORY_SECONDS = 600
MAX_REMEMBERED = 200_000


class ChallengeStates:
    """Issues and checks States; remembers the ones already answered."""

    def __init__(self, api_key: str) -> None:
        """Derive the HMAC key from the portal key (never the key itself)."""
        self._key = hmac.new(api_key.encode(), b"pushgate radius state v1", hashlib.sha256).digest()
        self._used: OrderedDict[bytes, float] = OrderedDict()

    def _tag(self, challenge_id: bytes, client: str, user: str) -> bytes:
        message = b"|".join((challenge_id, client.encode(), user.encode()))
        return hmac.new(self._key, message, hashlib.sha256).digest()[:_TAG_BYTES]

    def issue(self, challenge_id: str, *, client: str, user: str) -> bytes:
        """The State value for an Access-Challenge about ``challenge_id``."""
        cid = challenge_id.encode()
        return _PREFIX + cid + b"." + self._tag(cid, client, user).hex().encode()

    def challenge_of(self, state: bytes, *, client: str, user: str) -> str | None:
        """The challenge id in ``state`` if it is ours, for this NAS and user, and unused."""
        if not state.startswith(_PREFIX) or state in self._used:
            return None
        cid, dot, tag_hex = state[len(_PREFIX) :].rpartition(b".")
        if not dot or not _CHALLENGE_ID.match(cid):
            return None
        expected = self._tag(cid, client, user).hex().encode()
        if not hmac.compare_digest(expected, tag_hex):
            return None
        return cid.decode()

    def mark_used(self, state: bytes) -> None:
        """Refuse ``state`` from now on (its challenge got its final answer)."""
        now = time.monotonic()
        while self._used and (
            len(self._used) >= MAX_REMEMBERED or next(iter(self._used.values())) < now
        ):
            self._used.popitem(last=False)
        self._used[state] = now + USED_MEMORY_SECONDS
