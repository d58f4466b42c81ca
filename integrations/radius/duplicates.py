"""Duplicate detection of RFC 5080 §2.2.2: a retransmitted request never starts a second login.

A request is known by its client, Identifier and Request Authenticator. While the first copy
is being answered, copies are dropped (the NAS keeps retransmitting); once answered, copies
get the same reply bytes again for a while.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Literal

Key = tuple[str, int, bytes]

#: how long an answered request's reply is kept for retransmissions
KEEP_SECONDS = 30.0
MAX_ANSWERED = 100_000


class Duplicates:
    """Requests in progress and recent replies, by (client, Identifier, Request Authenticator)."""

    def __init__(
        self, keep_seconds: float = KEEP_SECONDS, max_answered: int = MAX_ANSWERED
    ) -> None:
        """Keep replies ``keep_seconds``; at most ``max_answered`` of them."""
        self._keep = keep_seconds
        self._max = max_answered
        self._in_progress: set[Key] = set()
        self._answered: OrderedDict[Key, tuple[float, bytes]] = OrderedDict()

    @property
    def in_progress(self) -> int:
        """How many requests are being answered now."""
        return len(self._in_progress)

    def begin(self, key: Key) -> Literal["new", "in_progress"] | bytes:
        """``new`` (and now in progress), ``in_progress``, or the reply sent before."""
        if key in self._in_progress:
            return "in_progress"
        answered = self._answered.get(key)
        if answered is not None:
            expires, reply = answered
            if expires > time.monotonic():
                return reply
            del self._answered[key]
        self._in_progress.add(key)
        return "new"

    def finish(self, key: Key, reply: bytes) -> None:
        """Remember the reply for retransmissions of ``key``."""
        self._in_progress.discard(key)
        now = time.monotonic()
        while self._answered and (
            len(self._answered) >= self._max or next(iter(self._answered.values()))[0] <= now
        ):
            self._answered.popitem(last=False)
        self._answered[key] = (now + self._keep, reply)

    def abandon(self, key: Key) -> None:
        """Forget ``key`` without a reply, so a retransmission is handled afresh."""
        self._in_progress.discard(key)
