"""Fault injection shared by the stand-ins; thread-safe, also configurable as JSON.

A fault is an HTTP status plus the provider's reason string (APNs ``reason`` such as
``TooManyRequests``, FCM ``errorCode`` such as ``QUOTA_EXCEEDED``), an optional
``Retry-After``, or ``hang`` (the request is accepted and never answered).

Faults apply to requests that passed the service's own checks (auth, headers, payload).
Precedence: dead tokens (``invalid_tokens``), then a per-token fault, then the queue of
next-N faults, then ``hang_all``. ``latency`` delays every answer.

JSON form (``POST /_standin/faults``; every key optional)::

    {"reset": true, "latency": 0.05, "hang_all": false, "invalid_tokens": ["ab12..."],
     "next": [{"status": 429, "reason": "TooManyRequests", "retry_after": 3, "count": 2},
              {"hang": true}],
     "tokens": {"ab12...": {"status": 500, "reason": "InternalServerError", "count": null}}}
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Fault:
    """What to answer instead of success."""

    status: int = 0
    reason: str = ""
    retry_after: float | None = None
    hang: bool = False

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Fault:
        retry_after = obj.get("retry_after")
        return cls(
            status=int(obj.get("status", 0)),
            reason=str(obj.get("reason", "")),
            retry_after=None if retry_after is None else float(retry_after),
            hang=bool(obj.get("hang", False)),
        )


class FaultPlan:
    """The faults a stand-in injects; every method may be called from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: deque[Fault] = deque()
        self._tokens: dict[str, tuple[Fault, int | None]] = {}
        self._invalid: set[str] = set()
        self._latency = 0.0
        self._hang_all = False

    def fail_next(
        self, status: int, reason: str, *, count: int = 1, retry_after: float | None = None
    ) -> None:
        """Answer the next ``count`` valid requests (any token) with ``status`` / ``reason``."""
        self.push_next(Fault(status, reason, retry_after), count=count)

    def hang_next(self, count: int = 1) -> None:
        """Accept the next ``count`` requests and never answer them."""
        self.push_next(Fault(hang=True), count=count)

    def push_next(self, fault: Fault, *, count: int = 1) -> None:
        """Queue ``fault`` for the next ``count`` requests."""
        with self._lock:
            self._next.extend([fault] * count)

    def fail_token(
        self,
        token: str,
        status: int,
        reason: str,
        *,
        count: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Answer requests for ``token`` with ``status`` / ``reason``, ``count`` times or always."""
        self.set_token_fault(token, Fault(status, reason, retry_after), count=count)

    def hang_token(self, token: str, *, count: int | None = None) -> None:
        """Never answer requests for ``token``."""
        self.set_token_fault(token, Fault(hang=True), count=count)

    def set_token_fault(self, token: str, fault: Fault, *, count: int | None = None) -> None:
        with self._lock:
            self._tokens[token] = (fault, count)

    def add_invalid_tokens(self, *tokens: str) -> None:
        """Treat ``tokens`` as dead (APNs 410 Unregistered, FCM 404 UNREGISTERED)."""
        with self._lock:
            self._invalid.update(tokens)

    def set_latency(self, seconds: float) -> None:
        """Delay every answer by ``seconds``."""
        with self._lock:
            self._latency = max(0.0, seconds)

    def set_hang_all(self, hang: bool) -> None:
        """Stop answering any request (``True``) or resume (``False``)."""
        with self._lock:
            self._hang_all = hang

    def reset(self) -> None:
        """Drop every configured fault."""
        with self._lock:
            self._next.clear()
            self._tokens.clear()
            self._invalid.clear()
            self._latency = 0.0
            self._hang_all = False

    @property
    def latency(self) -> float:
        with self._lock:
            return self._latency

    def is_invalid(self, token: str) -> bool:
        with self._lock:
            return token in self._invalid

    def take(self, token: str) -> Fault | None:
        """The fault for one request to ``token`` (consuming counted faults), if any."""
        with self._lock:
            entry = self._tokens.get(token)
            if entry is not None:
                fault, count = entry
                if count is not None:
                    if count <= 1:
                        del self._tokens[token]
                    else:
                        self._tokens[token] = (fault, count - 1)
                return fault
            if self._next:
                return self._next.popleft()
            return Fault(hang=True) if self._hang_all else None

    def apply_json(self, obj: dict[str, Any]) -> None:
        """Apply the JSON form described in the module docstring."""
        if obj.get("reset"):
            self.reset()
        if "latency" in obj:
            self.set_latency(float(obj["latency"]))
        if "hang_all" in obj:
            self.set_hang_all(bool(obj["hang_all"]))
        self.add_invalid_tokens(*(str(t) for t in obj.get("invalid_tokens", [])))
        for item in obj.get("next", []):
            self.push_next(Fault.from_json(item), count=int(item.get("count", 1)))
        for token, item in dict(obj.get("tokens", {})).items():
            count = item.get("count")
            self.set_token_fault(
                str(token), Fault.from_json(item), count=None if count is None else int(count)
            )

    def to_json(self) -> dict[str, Any]:
        """The current plan in the JSON form."""
        with self._lock:
            return {
                "latency": self._latency,
                "hang_all": self._hang_all,
                "invalid_tokens": sorted(self._invalid),
                "next": [asdict(f) for f in self._next],
                "tokens": {t: {**asdict(f), "count": c} for t, (f, c) in self._tokens.items()},
            }
