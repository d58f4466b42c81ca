"""Audit events (SPEC §9): the type list and the one public shape of an event. Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import Enum
from typing import Any, Final

from approvals.challenge import rfc3339

EVENT_TYPES: Final[tuple[str, ...]] = (
    "challenge.created",
    "challenge.push_sent",
    "challenge.delivered",
    "challenge.approved",
    "challenge.denied",
    "challenge.fraud_reported",
    "challenge.expired",
    "challenge.cancelled",
    "challenge.throttled",
    "device.enrolled",
    "device.removed",
    "device.token_invalid",
    "totp.enrolled",
    "totp.confirmed",
    "totp.verified",
    "totp.failed",
    "totp.reset",
    "totp.removed",
    "user.locked",
    "user.unlocked",
    "enrollment.reminder",
    "enrollment.expired",
)
ALL_EVENTS: Final = "*"


class Progress(Enum):
    """A delivery fact recorded once on a pending challenge: the record field it sets, the
    message the waiting portal is sent, and the audit event it appends (None: no event).
    ``SENT`` is recorded by the delivery scripts, which spell the same three names."""

    field: str
    message: str
    event: str | None

    SENT = ("sent_at", "push_sent", "challenge.push_sent")
    DELIVERED = ("delivered_at", "delivered", "challenge.delivered")
    SEEN = ("seen_at", "seen", None)

    def __init__(self, field: str, message: str, event: str | None) -> None:
        self.field = field
        self.message = message
        self.event = event


#: the portal websocket messages that report progress (passed on as they are)
PROGRESS_MESSAGES: Final[frozenset[str]] = frozenset(p.message for p in Progress)


def event_item(event_id: str, fields: Mapping[str, str]) -> dict[str, Any]:
    """An event of the tenant stream as the API lists it and webhooks receive it:
    ``{"id", "type", "at", "tenant", "user_id", "challenge_id"?, "device_id"?, "data"}``."""
    try:
        data = json.loads(fields.get("data") or "{}")
    except ValueError:
        data = {}
    item: dict[str, Any] = {
        "id": event_id,
        "type": fields.get("type", ""),
        "at": rfc3339(fields.get("at")),
        "tenant": fields.get("tenant", ""),
        "user_id": fields.get("user_id", ""),
    }
    for name in ("challenge_id", "device_id"):
        if fields.get(name):
            item[name] = fields[name]
    item["data"] = data if isinstance(data, dict) else {}
    return item
