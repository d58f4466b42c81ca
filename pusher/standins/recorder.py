"""What a stand-in received: one immutable record per push request, readable from any thread."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Received:
    """One push request as the provider saw it, and what the stand-in answered."""

    at: float  # epoch seconds when the request was complete
    method: str
    path: str
    token: str  # device token / FCM target ("" if none)
    headers: dict[str, str]  # lower-case names; the last value wins for repeated names
    payload: Any  # parsed JSON body, or None if it was not JSON
    body_size: int  # bytes
    status: int | None  # the answer's HTTP status; None for a request left unanswered
    reason: str | None  # APNs reason / FCM errorCode of an error answer
    http_version: str  # "2" or "1.1"
    connection_id: int  # which connection it came on (sequential per server)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class Recorder:
    """A thread-safe append-only list of :class:`Received` with a blocking wait."""

    def __init__(self) -> None:
        self._items: list[Received] = []
        self._cond = threading.Condition()

    def add(self, item: Received) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def all(self) -> list[Received]:
        """Every request so far, oldest first."""
        with self._cond:
            return list(self._items)

    def delivered(self) -> list[Received]:
        """The requests answered with 200."""
        return [r for r in self.all() if r.status == 200]

    def for_token(self, token: str) -> list[Received]:
        return [r for r in self.all() if r.token == token]

    def clear(self) -> None:
        with self._cond:
            self._items.clear()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Block until at least ``count`` requests were recorded (or ``timeout``); return all.

        From async code call it through ``asyncio.to_thread`` so the loop keeps running.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._items) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self._items)
