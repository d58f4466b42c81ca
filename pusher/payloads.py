"""What a phone is shown for a :class:`PushMessage`: text rules and payloads (pure, no I/O).

Both providers build from here, so APNs and FCM show the same words. Long ``app_name``
and ``location`` are cut with "…" (first to a readable length, then further if needed) so
that a payload always fits the provider's 4096-byte limit; nothing is rejected for length.
"""

from __future__ import annotations

import email.utils
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pusher.providers.base import PushMessage

TITLE = "Sign-in request"
CATEGORY = "PUSHGATE_CHALLENGE"
SEPARATOR = " · "
ELLIPSIS = "…"
MAX_PAYLOAD_BYTES = 4096  # APNs alert payload limit; also FCM's message limit
MAX_APP_NAME_CHARS = 80
MAX_LOCATION_CHARS = 120
ENDED_TITLES = {
    "approved": "Sign-in approved",
    "denied": "Sign-in denied",
    "fraud": "Sign-in reported",
    "expired": "Sign-in request expired",
    "cancelled": "Sign-in request cancelled",
}
ENDED_TITLE = "Sign-in request answered"
_SPACES = re.compile(r"[\s\x00-\x1f\x7f]+")


@dataclass(frozen=True, slots=True)
class Alert:
    """Title and body shown on the lock screen."""

    title: str
    body: str


@dataclass(frozen=True, slots=True)
class FcmFields:
    """The parts of an FCM HTTP v1 message that carry the challenge."""

    title: str
    body: str
    data: dict[str, str]
    ttl: int  # seconds, >= 1
    collapse_key: str
    priority: str = "high"


def clean(text: str) -> str:
    """One line of text: control characters and runs of whitespace become one space."""
    return _SPACES.sub(" ", text).strip()


def truncate(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters, ending in "…" when cut."""
    if len(text) <= max_chars:
        return text
    return text[: max(0, max_chars - 1)].rstrip() + ELLIPSIS


def _json_bytes(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode()) - 2


def shrink_to(text: str, budget: int) -> str:
    """The longest prefix of ``text`` + "…" whose JSON-escaped UTF-8 size is <= ``budget``.

    Returns ``text`` unchanged if it fits, and "…" alone if nothing longer does.
    """
    if _json_bytes(text) <= budget:
        return text
    lo, hi = 0, len(text)  # invariant: prefix of length lo fits (or lo == 0)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _json_bytes(text[:mid].rstrip() + ELLIPSIS) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + ELLIPSIS


def alert(message: PushMessage, app_name: str, location: str) -> Alert:
    """The alert for ``message`` with the given (already shortened) names."""
    body = SEPARATOR.join(part for part in (app_name, location) if part)
    if message.kind == "ended":
        return Alert(ENDED_TITLES.get(message.status, ENDED_TITLE), body)
    return Alert(TITLE, body)


def _display_names(message: PushMessage) -> tuple[str, str]:
    app_name = truncate(clean(message.app_name), MAX_APP_NAME_CHARS)
    location = truncate(clean(message.location), MAX_LOCATION_CHARS)
    return app_name, location


def _fit(message: PushMessage, size: Callable[[str, str], int], limit: int) -> tuple[str, str]:
    """Shorten app name / location (the longer first) until ``size(app, loc) <= limit``."""
    app_name, location = _display_names(message)
    while True:
        over = size(app_name, location) - limit
        if over <= 0:
            return app_name, location
        app_bytes, loc_bytes = _json_bytes(app_name), _json_bytes(location)
        if app_bytes >= loc_bytes and app_name not in ("", ELLIPSIS):
            shorter = shrink_to(app_name, max(0, app_bytes - over))
            app_name, changed = shorter, shorter != app_name
        elif location not in ("", ELLIPSIS):
            shorter = shrink_to(location, max(0, loc_bytes - over))
            location, changed = shorter, shorter != location
        else:
            changed = False
        if not changed:
            raise ValueError("identifiers alone exceed the push payload limit")


def apns_size(payload: dict[str, Any]) -> int:
    """Bytes of ``payload`` as aioapns puts it on the wire."""
    return len(json.dumps(payload, ensure_ascii=False).encode())


def _apns(message: PushMessage, app_name: str, location: str) -> dict[str, Any]:
    text = alert(message, app_name, location)
    aps: dict[str, Any] = {"alert": {"title": text.title, "body": text.body}}
    if message.kind == "challenge":
        aps["sound"] = "default"
        aps["category"] = CATEGORY
    payload: dict[str, Any] = {
        "aps": aps,
        "challenge_id": message.challenge_id,
        "tenant": message.tenant,
    }
    if message.kind == "ended":
        payload["status"] = message.status
    return payload


def apns_payload(message: PushMessage, *, limit: int = MAX_PAYLOAD_BYTES) -> dict[str, Any]:
    """The APNs JSON payload for ``message``, at most ``limit`` bytes.

    A challenge carries sound and the ``PUSHGATE_CHALLENGE`` category (the approve / deny
    actions); the ``ended`` follow-up is silent, has no actions and adds ``status``.
    """
    app_name, location = _fit(message, lambda a, loc: apns_size(_apns(message, a, loc)), limit)
    return _apns(message, app_name, location)


def _fcm(message: PushMessage, app_name: str, location: str) -> FcmFields:
    text = alert(message, app_name, location)
    data = {
        "challenge_id": message.challenge_id,
        "tenant": message.tenant,
        "app_name": app_name,
        "location": location,
        "expires_at": str(message.expires_at),
    }
    if message.kind == "ended":
        data["status"] = message.status
    return FcmFields(
        title=text.title,
        body=text.body,
        data=data,
        ttl=max(1, message.expires_at - message.now),
        collapse_key=message.challenge_id,
    )


def fcm_size(fields: FcmFields) -> int:
    """Bytes FCM counts against its limit: data keys and values plus notification text."""
    data = sum(len(k.encode()) + len(v.encode()) for k, v in fields.data.items())
    return data + len(fields.title.encode()) + len(fields.body.encode())


def fcm_fields(message: PushMessage, *, limit: int = MAX_PAYLOAD_BYTES) -> FcmFields:
    """The FCM message fields for ``message``; ttl is the seconds left (at least 1)."""
    app_name, location = _fit(message, lambda a, loc: fcm_size(_fcm(message, a, loc)), limit)
    return _fcm(message, app_name, location)


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A ``Retry-After`` header (delta seconds or HTTP date) as seconds from ``now``."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)
