"""Audit events (SPEC §9): the type list and the one public shape of an event. Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping
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
