"""The challenge state machine and its views (SPEC §3). Pure: records in, dicts out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

Status = Literal["pending", "approved", "denied", "fraud", "expired", "cancelled"]
Reason = Literal["number_mismatch", "user_denied", "fraud_reported", "ttl", "portal_cancelled"]
Method = Literal["push", "totp"]

PENDING: Final = "pending"
TERMINAL: Final[frozenset[str]] = frozenset({"approved", "denied", "fraud", "expired", "cancelled"})
STATUSES: Final[frozenset[str]] = TERMINAL | {PENDING}

Record = Mapping[str, str]


def can_transition(current: str, target: str) -> bool:
    """Only a pending challenge may move, and only to a terminal state."""
    return current == PENDING and target in TERMINAL


def effective_status(record: Record, now_ms: int) -> str:
    """The status a reader sees: a pending challenge past its deadline reads ``expired``."""
    status = record.get("status", PENDING)
    if status == PENDING and now_ms >= int(record.get("expires_at", "0")):
        return "expired"
    return status


def outcome_for_answer(decision: str, number_ok: bool) -> tuple[str, str | None]:
    """Map a device's signed decision to the final (status, reason)."""
    if decision == "approve":
        return ("approved", None) if number_ok else ("denied", "number_mismatch")
    if decision == "deny":
        return "denied", "user_denied"
    if decision == "fraud":
        return "fraud", "fraud_reported"
    raise ValueError(f"unknown decision {decision!r}")


def rfc3339(ms: int | str | None) -> str | None:
    """Epoch milliseconds as an RFC 3339 UTC string (None stays None)."""
    if ms in (None, ""):
        return None
    moment = datetime.fromtimestamp(int(ms) / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _context(record: Record) -> dict[str, Any]:
    raw = record.get("ctx") or "{}"
    value = json.loads(raw)
    return value if isinstance(value, dict) else {}


def portal_view(record: Record, now_ms: int) -> dict[str, Any]:
    """What the portal sees (includes the number to display, never any secret)."""
    status = effective_status(record, now_ms)
    reason = record.get("reason") or None
    if status == "expired" and reason is None:
        reason = "ttl"
    return {
        "id": record["id"],
        "status": status,
        "user_id": record.get("user_id"),
        "resource": record.get("resource"),
        "app_name": record.get("app_name"),
        "context": _context(record),
        "number_matching": record.get("nm") == "1",
        "number": record.get("number") or None,
        "created_at": rfc3339(record.get("created_at")),
        "expires_at": rfc3339(record.get("expires_at")),
        "push": {
            "sent_at": rfc3339(record.get("sent_at")),
            "delivered_at": rfc3339(record.get("delivered_at")),
            "seen_at": rfc3339(record.get("seen_at")),
            "error": record.get("push_error") or None,
        },
        "decided_at": rfc3339(record.get("decided_at")),
        "method": record.get("method") or None,
        "device_id": record.get("device_id") or None,
        "reason": reason,
    }


def device_message(channel_message: str) -> str:
    """What a device websocket sends for one message of the user's in-app channel: a new
    challenge arrives as its record fields (published by the delivery script) and goes out as
    its device view; every other message (``ended``) goes out as it is."""
    if '"record"' not in channel_message:
        return channel_message
    message = json.loads(channel_message)
    record = message.get("record") if isinstance(message, dict) else None
    if message.get("type") != "challenge" or not isinstance(record, dict):
        return channel_message
    return json.dumps({"type": "challenge", "challenge": device_view(record)})


def device_view(record: Record) -> dict[str, Any]:
    """What a device sees: enough to show and sign the prompt, never the number."""
    return {
        "id": record["id"],
        "app_name": record.get("app_name"),
        "context": _context(record),
        "created_at": rfc3339(record.get("created_at")),
        "expires_at": rfc3339(record.get("expires_at")),
        "number_matching": record.get("nm") == "1",
        "nonce": record.get("nonce"),
    }
