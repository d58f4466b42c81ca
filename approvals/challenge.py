"""The challenge state machine and its views (SPEC §3). Pure: records in, dicts out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Final, Literal

from approvals.records import ChallengeRecord, Hash, as_challenge

Status = Literal["pending", "approved", "denied", "fraud", "expired", "cancelled"]
Reason = Literal["number_mismatch", "user_denied", "fraud_reported", "ttl", "portal_cancelled"]
Method = Literal["push", "totp"]

PENDING: Final = "pending"
TERMINAL: Final[frozenset[str]] = frozenset({"approved", "denied", "fraud", "expired", "cancelled"})
STATUSES: Final[frozenset[str]] = TERMINAL | {PENDING}


def can_transition(current: str, target: str) -> bool:
    """Only a pending challenge may move, and only to a terminal state."""
    return current == PENDING and target in TERMINAL


def effective_status(record: ChallengeRecord | Hash, now_ms: int) -> str:
    """The status a reader sees: a pending challenge past its deadline reads ``expired``."""
    record = as_challenge(record)
    if record.status == PENDING and now_ms >= record.expires_at_ms:
        return "expired"
    return record.status


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


def portal_view(record: ChallengeRecord | Hash, now_ms: int) -> dict[str, Any]:
    """What the portal sees (includes the number to display, never any secret)."""
    record = as_challenge(record)
    status = effective_status(record, now_ms)
    reason = record.reason or None
    if status == "expired" and reason is None:
        reason = "ttl"
    return {
        "id": record.id,
        "status": status,
        "user_id": record.user_id,
        "resource": record.resource,
        "app_name": record.app_name,
        "context": record.context,
        "number_matching": record.number_matching,
        "number": record.number or None,
        "created_at": rfc3339(record.created_at_ms),
        "expires_at": rfc3339(record.expires_at_ms),
        "push": {
            "sent_at": rfc3339(record.sent_at_ms),
            "delivered_at": rfc3339(record.delivered_at_ms),
            "seen_at": rfc3339(record.seen_at_ms),
            "error": record.push_error or None,
        },
        "decided_at": rfc3339(record.decided_at_ms),
        "method": record.method or None,
        "device_id": record.device_id or None,
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
    fields = {k: v for k, v in record.items() if isinstance(v, str)}  # JSON null/false: absent
    challenge = device_view(ChallengeRecord.from_hash(fields))
    return json.dumps({"type": "challenge", "challenge": challenge})


def device_view(record: ChallengeRecord | Hash) -> dict[str, Any]:
    """What a device sees: enough to show and sign the prompt, never the number."""
    record = as_challenge(record)
    return {
        "id": record.id,
        "app_name": record.app_name,
        "context": record.context,
        "created_at": rfc3339(record.created_at_ms),
        "expires_at": rfc3339(record.expires_at_ms),
        "number_matching": record.number_matching,
        "nonce": record.nonce,
    }
