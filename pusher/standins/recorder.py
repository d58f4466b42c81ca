"""What a stand-in received: one immutable record per push request, readable from any thread."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
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
    """A thread-safe record of :class:`Received` with counters and a blocking wait.

    Keeps the newest ``max_items`` records (load tests send far more); the counters in
    :meth:`summary` cover every request since the last :meth:`clear`.
    """

    def __init__(self, max_items: int = 100_000) -> None:
        self._items: deque[Received] = deque(maxlen=max_items)
        self._total = 0
        self._by_status: Counter[str] = Counter()
        self._handling = 0
        self._cond = threading.Condition()

    @contextmanager
    def handling(self) -> Iterator[None]:
        """Count one push request as in progress while the block runs."""
        with self._cond:
            self._handling += 1
        try:
            yield
        finally:
            with self._cond:
                self._handling -= 1

    @property
    def in_progress(self) -> int:
        """Push requests received and not yet answered (nor abandoned by the client)."""
        with self._cond:
            return self._handling

    def add(self, item: Received) -> None:
        with self._cond:
            self._items.append(item)
            self._total += 1
            self._by_status[str(item.status)] += 1
            self._cond.notify_all()

    def summary(self) -> dict[str, Any]:
        """``{"total": n, "by_status": {"200": n, "None": unanswered, ...}, "in_progress": n}``."""
        with self._cond:
            return {
                "total": self._total,
                "by_status": dict(self._by_status),
                "in_progress": self._handling,
            }

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
            self._total = 0
            self._by_status.clear()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Block until ``count`` requests were recorded (or ``timeout``); return those kept.

        From async code call it through ``asyncio.to_thread`` so the loop keeps running.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._total < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self._items)
