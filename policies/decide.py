"""Policy evaluation (SPEC §3, §5, §6): TOTP lockout, enrollment period, push fatigue caps.

Pure functions over a :class:`Policy` and plain values; every time is float epoch seconds.
The Lua scripts enforce the lockout and fatigue rules atomically, with the functions of
``approvals/store/scripts/_lib.lua`` that name the function here they decide like;
tests/integration/test_rules_agree.py runs both on the same inputs and expects the same
decisions (:func:`is_locked`, :func:`register_failure`, :func:`push_allowed`).

Lock representation (``locked_until``), as stored and as passed to :func:`is_locked`:

- ``None`` (field absent): no lock in force.
- :data:`UNTIL_UNLOCKED` (``0``; any value ``<= 0`` is read the same way, so a damaged value
  fails closed): locked until an admin unlocks; this is what a lock taken under
  ``lockout_seconds == 0`` records.
- a positive time ``t``: locked while ``now < t``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from policies.policy import Policy, max_totp_attempts

DAY_SECONDS: Final = 86400
REMINDER_LEAD_SECONDS: Final = DAY_SECONDS
UNTIL_UNLOCKED: Final = 0.0

EnrollmentState = Literal["enrolled", "grace", "expired", "locked"]
TotpStatus = Literal["none", "pending", "active"]


# TOTP attempts and lockout (SPEC §5)


def attempt_limit(policy: Policy, *, is_admin: bool) -> int:
    """Failed TOTP attempts allowed before lockout: the policy's, at most five for admins."""
    return max_totp_attempts(policy, is_admin=is_admin)


def lock_until(policy: Policy, now: float) -> float:
    """``locked_until`` for a lock taken at ``now``: ``now + lockout_seconds``, or
    :data:`UNTIL_UNLOCKED` when ``lockout_seconds`` is 0."""
    if policy.lockout_seconds == 0:
        return UNTIL_UNLOCKED
    return now + policy.lockout_seconds


def is_locked(locked_until: float | None, now: float) -> bool:
    """Whether a stored ``locked_until`` (see the module docstring) locks the user at ``now``."""
    if locked_until is None:
        return False
    return locked_until <= UNTIL_UNLOCKED or now < locked_until


def lock_retry_after(locked_until: float | None, now: float) -> int | None:
    """Whole seconds (>= 1) until a timed lock ends, for ``Retry-After``; None when no lock
    is in force or the lock lasts until an admin unlocks."""
    if locked_until is None or locked_until <= UNTIL_UNLOCKED or now >= locked_until:
        return None
    return max(1, math.ceil(locked_until - now))


def attempts_left(limit: int, failures: int) -> int:
    """Failed attempts still allowed after ``failures`` (0 once the limit is reached)."""
    return max(0, limit - failures)


@dataclass(frozen=True, slots=True)
class FailedAttempt:
    """The outcome of one more failed TOTP attempt."""

    failures: int  # failures counted so far, this one included
    attempts_remaining: int  # >= 0; 0 on the failure that locks
    locked_until: float | None  # set on the failure that reaches the limit, else None


def register_failure(
    failures_before: int, policy: Policy, *, is_admin: bool, now: float
) -> FailedAttempt:
    """Count one failed attempt (``failures_before`` >= 0 were counted since the last
    success); a failure that reaches (or passes) the limit takes the lock."""
    limit = attempt_limit(policy, is_admin=is_admin)
    failures = failures_before + 1
    remaining = attempts_left(limit, failures)
    locked = lock_until(policy, now) if failures >= limit else None
    return FailedAttempt(failures=failures, attempts_remaining=remaining, locked_until=locked)


# Enrollment period (SPEC §6)


def enrollment_deadline(started_at: float, policy: Policy) -> float:
    """When the enrollment period that started at ``started_at`` ends."""
    return started_at + policy.enrollment_period_days * DAY_SECONDS


def extended_deadline(deadline: float | None, days: int, now: float) -> float:
    """An admin's extension by ``days``: from the current deadline, or from ``now`` if that
    has passed (or none was set)."""
    if days < 0:
        raise ValueError("days must be >= 0")
    start = now if deadline is None else max(deadline, now)
    return start + days * DAY_SECONDS


def days_remaining(deadline: float, now: float) -> int:
    """Whole days left until ``deadline``, rounded up; 0 at and after it.

    Counted exactly from ``deadline - now`` (``divmod`` does not round), so it agrees with
    :func:`reminder_due` (due exactly when 1 day remains) and :func:`expiry_due` (0 days).
    """
    left = deadline - now
    if left <= 0:
        return 0
    whole, rest = divmod(left, DAY_SECONDS)
    return int(whole) + (1 if rest > 0 else 0)


def reminder_due(deadline: float, now: float) -> bool:
    """True within the last 24 hours: more than 0 and at most 24 h left before ``deadline``."""
    return 0 < deadline - now <= REMINDER_LEAD_SECONDS


def expiry_due(deadline: float, now: float) -> bool:
    """True at and after ``deadline``."""
    return deadline - now <= 0


@dataclass(frozen=True, slots=True)
class MfaStatus:
    """A user's MFA standing as ``GET /v1/users/{id}`` shows it in ``mfa``."""

    state: EnrollmentState
    enrollment_deadline: float | None  # None when no enrollment period applies
    days_remaining: int | None  # None exactly when enrollment_deadline is None


def mfa_status(
    *,
    mfa_required: bool,
    has_push: bool,
    totp_status: TotpStatus,
    deadline: float | None,
    locked: bool,
    now: float,
) -> MfaStatus:
    """Classify a user.

    - ``locked``: a TOTP lockout is in force (takes precedence over everything else).
    - ``enrolled``: an active factor exists (a push device, or a confirmed TOTP key).
    - ``grace``: no active factor yet, but sign-in is allowed: MFA is not required, or the
      enrollment period has not ended.
    - ``expired``: MFA is required, no active factor, and the period has ended. A required
      user with no recorded ``deadline`` counts as expired (fail closed).

    The deadline and days are reported only while MFA is required and no factor is active.
    """
    enrolled = has_push or totp_status == "active"
    shown = deadline if mfa_required and not enrolled else None
    days = None if shown is None else days_remaining(shown, now)
    state: EnrollmentState
    if locked:
        state = "locked"
    elif enrolled:
        state = "enrolled"
    elif mfa_required and (deadline is None or expiry_due(deadline, now)):
        state = "expired"
    else:
        state = "grace"
    return MfaStatus(state=state, enrollment_deadline=shown, days_remaining=days)


# Push fatigue (SPEC §3)


class PushVerdict(enum.StrEnum):
    """Whether one more push may be sent, and if not, why."""

    ALLOWED = "allowed"
    FRAUD_BLOCKED = "fraud_blocked"  # 423 push_blocked
    WINDOW_CAP = "window_cap"  # 429 push_throttled
    UNANSWERED_CAP = "unanswered_cap"  # 429 push_throttled


def fraud_block_until(policy: Policy, now: float) -> float | None:
    """When a fraud report made at ``now`` stops blocking pushes; None if the policy sets
    no block (``fraud_block_seconds == 0``)."""
    if policy.fraud_block_seconds == 0:
        return None
    return now + policy.fraud_block_seconds


def pushes_in_window(sent_times: Iterable[float], policy: Policy, now: float) -> int:
    """Pushes that count toward the window cap: sent at ``t`` with ``t > now - window`` (a
    send stamped after ``now``, by a clock that stepped back, counts too)."""
    start = now - policy.push_window_seconds
    return sum(1 for t in sent_times if t > start)


def push_allowed(
    sent_times: Iterable[float],
    unanswered: int,
    policy: Policy,
    *,
    now: float,
    fraud_blocked_until: float | None = None,
) -> PushVerdict:
    """Whether one more push may go out at ``now``.

    ``sent_times`` are earlier sends (older ones are ignored), ``unanswered`` counts pushes
    since the last approval. Checked in order: fraud block, window cap (at most
    ``max_pushes_per_window`` in the window), unanswered cap (at most
    ``max_unanswered_pushes``).
    """
    if fraud_blocked_until is not None and now < fraud_blocked_until:
        return PushVerdict.FRAUD_BLOCKED
    if pushes_in_window(sent_times, policy, now) >= policy.max_pushes_per_window:
        return PushVerdict.WINDOW_CAP
    if unanswered >= policy.max_unanswered_pushes:
        return PushVerdict.UNANSWERED_CAP
    return PushVerdict.ALLOWED
