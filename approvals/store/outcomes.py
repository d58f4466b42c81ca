"""What the challenge scripts decide, as types (their values are the scripts' reply words)."""

from __future__ import annotations

import enum


class CreateResult(enum.StrEnum):
    """The create script's decision (also the ``challenges`` metric label)."""

    CREATED = "created"
    DEDUPLICATED = "deduplicated"  # a challenge for the resource is still pending
    THROTTLED = "throttled"
    USER_LOCKED = "user_locked"
    PUSH_BLOCKED = "push_blocked"
    NO_PUSH_DEVICE = "no_push_device"


class Refusal(enum.StrEnum):
    """Why a create was refused, where the result alone does not say."""

    NONE = ""
    DEDUPE = "dedupe"  # a challenge for the resource just ended
    WINDOW = "window"  # max_pushes_per_window reached
    UNANSWERED = "unanswered"  # max_unanswered_pushes reached
    ENROLLMENT_EXPIRED = "enrollment_expired"  # no device and the enrollment period is over


class EndResult(enum.StrEnum):
    """The end and answer scripts' decision."""

    OK = "ok"  # this step ended the challenge
    NOT_FOUND = "not_found"  # no such challenge (for this owner)
    EXPIRED = "expired"  # the deadline had passed (the expiry is now recorded)
    DECIDED = "decided"  # it had already ended
    PENDING = "pending"  # an expiry asked for before the deadline: nothing changed
    SIGN_COUNT = "sign_count"  # the authenticator's sign count did not grow


class TotpResult(enum.StrEnum):
    """The TOTP scripts' decision."""

    OK = "ok"
    INVALID = "invalid"  # the code matched no usable step (the failure is counted)
    REPLAYED = "replayed"  # the step was already used
    LOCKED = "locked"  # the user is locked
    EXPIRED = "expired"  # no key and the enrollment period is over
    NO_TOTP = "no_totp"  # no key in the state the step needs
    ACTIVE = "active"  # a key is already active
    CHANGED = "changed"  # the key changed since the caller read it: read again
