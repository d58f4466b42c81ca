"""The tenant policy: fields, defaults and bounds (SPEC §7)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ADMIN_MAX_TOTP_ATTEMPTS = 5


class Policy(BaseModel):
    """A tenant's approval policy. Every field has a default and enforced bounds."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    push_ttl_seconds: int = Field(60, ge=15, le=300)
    dedupe_seconds: int = Field(60, ge=0, le=600)
    number_matching: bool = True
    number_digits: int = Field(2, ge=2, le=3)
    require_user_verification: bool = True
    max_pushes_per_window: int = Field(5, ge=1, le=100)
    push_window_seconds: int = Field(600, ge=60, le=86400)
    max_unanswered_pushes: int = Field(10, ge=1, le=100)
    fraud_block_seconds: int = Field(3600, ge=0, le=86400)
    totp_max_attempts: int = Field(5, ge=1, le=10)
    lockout_seconds: int = Field(900, ge=0, le=86400)
    enrollment_period_days: int = Field(7, ge=0, le=90)
    result_retention_seconds: int = Field(300, ge=30, le=86400)


class PolicyError(ValueError):
    """A policy document broke a bound; ``fields`` names every offending field."""

    def __init__(self, fields: list[dict[str, str]]) -> None:
        super().__init__("; ".join(f"{f['field']}: {f['message']}" for f in fields))
        self.fields = fields


def _errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "body", "message": err["msg"]}
        for err in exc.errors()
    ]


def parse_policy(document: Any) -> Policy:
    """Build a whole policy from ``document``; missing fields take their defaults."""
    try:
        return Policy.model_validate(document)
    except ValidationError as exc:
        raise PolicyError(_errors(exc)) from None


def patch_policy(current: Policy, changes: Any) -> Policy:
    """Apply ``changes`` (only the given fields) to ``current`` and re-check every bound."""
    if not isinstance(changes, dict):
        raise PolicyError([{"field": "body", "message": "must be a JSON object"}])
    return parse_policy({**current.model_dump(), **changes})


def max_totp_attempts(policy: Policy, *, is_admin: bool) -> int:
    """Failed TOTP attempts allowed before lockout; admins get at most five."""
    if is_admin:
        return min(policy.totp_max_attempts, ADMIN_MAX_TOTP_ATTEMPTS)
    return policy.totp_max_attempts
