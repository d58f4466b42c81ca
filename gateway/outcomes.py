"""Store outcomes as HTTP answers: one table from each refusal to its problem (SPEC §10)."""

from __future__ import annotations

from typing import Any, Final

from approvals.challenge import effective_status
from approvals.records import ChallengeRecord
from approvals.store.challenges import CreateOutcome
from approvals.store.outcomes import CreateResult, EndResult, Refusal, TotpResult
from gateway.problems import ProblemError

#: (create result, why) -> (problem code, detail); Refusal.NONE is each result's fallback
CREATE_REFUSALS: Final[dict[tuple[CreateResult, Refusal], tuple[str, str]]] = {
    (CreateResult.NO_PUSH_DEVICE, Refusal.NONE): (
        "no_push_device",
        "the user has no active push device; offer a verification code",
    ),
    (CreateResult.USER_LOCKED, Refusal.NONE): ("user_locked", "the user is locked"),
    (CreateResult.USER_LOCKED, Refusal.ENROLLMENT_EXPIRED): (
        "user_locked",
        "the enrollment period ended; an admin must extend it",
    ),
    (CreateResult.PUSH_BLOCKED, Refusal.NONE): (
        "push_blocked",
        "pushes are blocked after a fraud report",
    ),
    (CreateResult.THROTTLED, Refusal.NONE): ("push_throttled", "too many pushes"),
    (CreateResult.THROTTLED, Refusal.DEDUPE): (
        "push_throttled",
        "a challenge for this resource just ended; wait before sending another",
    ),
    (CreateResult.THROTTLED, Refusal.WINDOW): (
        "push_throttled",
        "too many pushes in the policy window",
    ),
    (CreateResult.THROTTLED, Refusal.UNANSWERED): (
        "push_throttled",
        "too many unanswered pushes since the last approval",
    ),
}

#: end or answer result -> (problem code, detail); ``{status}``: the status it already has
END_REFUSALS: Final[dict[EndResult, tuple[str, str]]] = {
    EndResult.NOT_FOUND: ("not_found", "no such challenge"),
    EndResult.EXPIRED: ("challenge_expired", "the challenge expired"),
    EndResult.DECIDED: ("challenge_already_decided", "the challenge is already {status}"),
    EndResult.SIGN_COUNT: ("webauthn_invalid", "the authenticator's sign count did not grow"),
}

#: TOTP result -> (problem code, detail, further problem fields); ``locked`` carries its own
#: Retry-After (gateway/totp.py), ``ok``/``invalid``/``changed`` are no refusals
TOTP_REFUSALS: Final[dict[TotpResult, tuple[str, str, dict[str, Any]]]] = {
    TotpResult.EXPIRED: (
        "user_locked",
        "the enrollment period ended; an admin must extend it",
        {},
    ),
    TotpResult.REPLAYED: (
        "code_replayed",
        "this code was already used; wait for the next one",
        {},
    ),
    TotpResult.ACTIVE: (
        "invalid_request",
        "a TOTP key is already active; reset it with a current code or ask an admin",
        {"status": 409, "errors": [{"field": "totp", "message": "already active"}]},
    ),
    TotpResult.NO_TOTP: ("not_found", "the user has no TOTP key in that state", {}),
}


def retry_after(retry_after_ms: int | None) -> dict[str, str]:
    """A ``Retry-After`` header in whole seconds (at least 1), or none without a wait."""
    if not retry_after_ms:
        return {}
    return {"Retry-After": str(max(1, -(-retry_after_ms // 1000)))}


def create_refused(outcome: CreateOutcome) -> ProblemError:
    """The problem for a create the script refused (not created, not deduplicated)."""
    refusal = CREATE_REFUSALS.get((outcome.result, outcome.why))
    code, detail = refusal or CREATE_REFUSALS[(outcome.result, Refusal.NONE)]
    return ProblemError(code, detail, headers=retry_after(outcome.retry_after_ms))


def end_refused(result: EndResult, status: str) -> ProblemError:
    """The problem for an end or answer step that ended nothing (``status``: the current)."""
    code, detail = END_REFUSALS[result]
    return ProblemError(code, detail.format(status=status))


def totp_refused(result: TotpResult) -> ProblemError:
    """The problem for a TOTP step the script refused (any other result reads ``no_totp``)."""
    code, detail, extra = TOTP_REFUSALS.get(result, TOTP_REFUSALS[TotpResult.NO_TOTP])
    return ProblemError(code, detail, **extra)


def ensure_pending(record: ChallengeRecord, now_ms: int) -> None:
    """Refuse, as the end scripts would, a step on a challenge that is no longer pending."""
    status = effective_status(record, now_ms)
    if status == "expired":
        raise end_refused(EndResult.EXPIRED, status)
    if status != "pending":
        raise end_refused(EndResult.DECIDED, status)
