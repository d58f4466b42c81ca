"""Portal views shared by several routes: a user with its MFA enrollment state."""

from __future__ import annotations

from typing import Any

from approvals.challenge import rfc3339
from policies.decide import is_locked, mfa_status
from policies.policy import Policy


def user_view(record: dict[str, str], devices: int, policy: Policy, now: float) -> dict[str, Any]:
    """The portal's view of a user, with the MFA enrollment state."""
    started = record.get("mfa_started_at")
    deadline_s: float | None = None
    if started and record.get("mfa_required", "1") == "1":
        deadline_s = int(started) / 1000 + policy.enrollment_period_days * 86400
        if record.get("enrollment_deadline"):
            deadline_s = int(record["enrollment_deadline"]) / 1000
    totp = record.get("totp_status", "none")
    locked_until: float | None = None
    if record.get("locked") == "1":
        locked_until = int(record.get("locked_until") or 0) / 1000
    status = mfa_status(
        mfa_required=record.get("mfa_required", "1") == "1",
        has_push=devices > 0,
        totp_status=totp if totp in ("none", "pending", "active") else "none",  # type: ignore[arg-type]
        deadline=deadline_s,
        locked=is_locked(locked_until, now),
        now=now,
    )
    return {
        "user_id": record.get("user_id"),
        "display_name": record.get("display_name") or None,
        "email": record.get("email") or None,
        "role": record.get("role", "user"),
        "mfa_required": record.get("mfa_required", "1") == "1",
        "created_at": rfc3339(record.get("created_at")),
        "mfa": {
            "push": devices,
            "totp": totp,
            "state": status.state,
            "enrollment_deadline": (
                rfc3339(int(status.enrollment_deadline * 1000))
                if status.enrollment_deadline is not None
                else None
            ),
            "days_remaining": status.days_remaining,
        },
    }
