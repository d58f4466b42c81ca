"""Policy bounds (SPEC §7) and the rules over them: lockout, enrollment period, fatigue."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.decide import (
    DAY_SECONDS,
    UNTIL_UNLOCKED,
    PushVerdict,
    attempt_limit,
    days_remaining,
    enrollment_deadline,
    expiry_due,
    extended_deadline,
    fraud_block_until,
    is_locked,
    lock_retry_after,
    lock_until,
    mfa_status,
    push_allowed,
    pushes_in_window,
    register_failure,
    reminder_due,
)
from policies.policy import Policy, PolicyError, parse_policy
from tests.policy_bounds import POLICY_BOUNDS

BOUNDS = POLICY_BOUNDS
FLAGS = {"number_matching": True, "require_user_verification": True}

times = st.floats(min_value=0.0, max_value=4_000_000_000.0, allow_nan=False)
deltas = st.floats(min_value=0.0, max_value=200.0 * DAY_SECONDS, allow_nan=False)
int_fields = st.sampled_from(sorted(BOUNDS))


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    values: dict[str, Any] = {
        name: draw(st.integers(lo, hi)) for name, (_, lo, hi) in BOUNDS.items()
    }
    values.update({name: draw(st.booleans()) for name in FLAGS})
    return parse_policy(values)


# Bounds


def test_bounds_table_covers_every_field() -> None:
    """Every Policy field is covered by the SPEC table used here, and nothing else exists."""
    assert set(Policy.model_fields) == set(BOUNDS) | set(FLAGS)


def test_defaults_match_the_spec() -> None:
    """An empty policy document gives the SPEC defaults."""
    policy = parse_policy({})
    for name, (default, _, _) in BOUNDS.items():
        assert getattr(policy, name) == default, name
    for name, default in FLAGS.items():
        assert getattr(policy, name) is default, name


@given(name=int_fields, data=st.data())
def test_every_in_bounds_value_is_accepted(name: str, data: st.DataObject) -> None:
    """Each integer field accepts every value between its bounds, inclusive."""
    _, lo, hi = BOUNDS[name]
    value = data.draw(st.integers(lo, hi))
    assert getattr(parse_policy({name: value}), name) == value


@given(name=int_fields, data=st.data())
def test_every_out_of_bounds_value_is_refused_naming_the_field(
    name: str, data: st.DataObject
) -> None:
    """Each integer field refuses values below or above its bounds, and the error names it."""
    _, lo, hi = BOUNDS[name]
    value = data.draw(st.one_of(st.integers(max_value=lo - 1), st.integers(min_value=hi + 1)))
    with pytest.raises(PolicyError) as raised:
        parse_policy({name: value})
    assert [f["field"] for f in raised.value.fields] == [name]


@given(name=int_fields, value=st.one_of(st.booleans(), st.floats(), st.text(max_size=5)))
def test_integer_fields_refuse_other_types(name: str, value: object) -> None:
    """Integer fields refuse booleans, floats and strings (strict model)."""
    with pytest.raises(PolicyError):
        parse_policy({name: value})


@pytest.mark.parametrize("name", sorted(FLAGS))
@pytest.mark.parametrize("value", [1, 0, "true", None])
def test_flags_refuse_non_booleans(name: str, value: object) -> None:
    """Boolean fields accept only true and false."""
    with pytest.raises(PolicyError):
        parse_policy({name: value})


# TOTP attempts and lockout


@given(policy=policies())
def test_admin_limit_is_at_most_five_and_at_most_the_policy_limit(policy: Policy) -> None:
    """Admins get min(policy limit, 5) attempts; other users get the policy limit."""
    admin = attempt_limit(policy, is_admin=True)
    assert 1 <= admin <= 5
    assert admin <= policy.totp_max_attempts
    assert admin == min(policy.totp_max_attempts, 5)
    assert attempt_limit(policy, is_admin=False) == policy.totp_max_attempts


@given(policy=policies(), is_admin=st.booleans(), now=times)
def test_exactly_the_limit_th_failure_locks(policy: Policy, is_admin: bool, now: float) -> None:
    """Failures 1..N-1 report N-k attempts left and no lock; failure N reports 0 and locks."""
    limit = attempt_limit(policy, is_admin=is_admin)
    failures = 0
    for k in range(1, limit + 1):
        outcome = register_failure(failures, policy, is_admin=is_admin, now=now)
        failures = outcome.failures
        assert failures == k
        assert outcome.attempts_remaining == limit - k
        if k < limit:
            assert outcome.locked_until is None
        else:
            assert outcome.locked_until == lock_until(policy, now)
            assert is_locked(outcome.locked_until, now)


@given(now=times, later=deltas)
def test_zero_lockout_locks_until_an_admin_unlocks(now: float, later: float) -> None:
    """With lockout_seconds 0 the lock is UNTIL_UNLOCKED (0) and holds at any later time."""
    locked_until = lock_until(parse_policy({"lockout_seconds": 0}), now)
    assert locked_until == UNTIL_UNLOCKED == 0
    assert is_locked(locked_until, now + later)
    assert lock_retry_after(locked_until, now + later) is None


@given(seconds=st.integers(1, 86400), now=times, offset=st.floats(0.0, 2 * 86400.0))
def test_timed_lock_holds_for_lockout_seconds(seconds: int, now: float, offset: float) -> None:
    """A timed lock holds from its start for lockout_seconds and ends exactly then."""
    locked_until = lock_until(parse_policy({"lockout_seconds": seconds}), now)
    assert locked_until == now + seconds > UNTIL_UNLOCKED
    assert is_locked(locked_until, now + offset) == (now + offset < locked_until)


@given(now=times)
def test_no_recorded_lock_is_unlocked(now: float) -> None:
    """None (no lock field) never locks."""
    assert not is_locked(None, now)
    assert lock_retry_after(None, now) is None


@given(
    locked_until=st.floats(-1e9, 0.0, allow_nan=False),
    now=times,
)
def test_non_positive_lock_values_fail_closed(locked_until: float, now: float) -> None:
    """Any stored value <= 0 reads as "until an admin unlocks", never as expired."""
    assert is_locked(locked_until, now)


@given(now=times, left=st.floats(0.001, 86400.0))
def test_retry_after_counts_whole_seconds_up(now: float, left: float) -> None:
    """Retry-After for a timed lock is the remaining time rounded up, at least 1 second."""
    locked_until = now + left
    remaining = locked_until - now
    retry = lock_retry_after(locked_until, now)
    assert retry is not None
    assert retry >= max(remaining, 1)
    assert retry - 1 < max(remaining, 1)
    assert lock_retry_after(locked_until, locked_until) is None


# Enrollment period


@given(started=times, days=st.integers(0, 90))
def test_deadline_is_start_plus_period_days(started: float, days: int) -> None:
    """The enrollment deadline is the start plus enrollment_period_days whole days."""
    policy = parse_policy({"enrollment_period_days": days})
    assert enrollment_deadline(started, policy) == started + days * 86400


@given(deadline=times, a=times, b=times)
def test_days_remaining_never_increases_with_time(deadline: float, a: float, b: float) -> None:
    """days_remaining is monotone non-increasing in now."""
    early, late = min(a, b), max(a, b)
    assert days_remaining(deadline, early) >= days_remaining(deadline, late)


@given(deadline=times, after=deltas)
def test_days_remaining_is_zero_at_and_after_deadline(deadline: float, after: float) -> None:
    """At and after the deadline no days remain."""
    assert days_remaining(deadline, deadline + after) == 0


@given(now=times, left=st.floats(1e-3, 200.0 * DAY_SECONDS))
def test_days_remaining_rounds_up_whole_days(now: float, left: float) -> None:
    """Before the deadline, days_remaining is the time left in days rounded up (so >= 1)."""
    deadline = now + left
    remaining = deadline - now
    days = days_remaining(deadline, now)
    assert days >= 1
    assert (days - 1) * DAY_SECONDS < remaining <= days * DAY_SECONDS


@pytest.mark.parametrize(
    ("before_deadline", "due"),
    [(86401, False), (86400, True), (43200, True), (1, True), (0, False), (-1, False)],
)
def test_reminder_due_exactly_in_the_last_24_hours(before_deadline: int, due: bool) -> None:
    """The reminder is due from 24 h before the deadline until (not at) the deadline."""
    deadline = 1_800_000_000.0
    assert reminder_due(deadline, deadline - before_deadline) is due


@given(deadline=times, offset=st.floats(-3.0 * DAY_SECONDS, 3.0 * DAY_SECONDS))
def test_reminder_window_matches_last_day(deadline: float, offset: float) -> None:
    """The reminder is due exactly while 1 day remains, and never together with expiry."""
    now = deadline + offset
    due = reminder_due(deadline, now)
    assert due == (days_remaining(deadline, now) == 1)
    assert not (due and expiry_due(deadline, now))


@given(deadline=times, offset=st.floats(-3.0 * DAY_SECONDS, 3.0 * DAY_SECONDS))
def test_expiry_due_at_and_after_deadline(deadline: float, offset: float) -> None:
    """Expiry is due exactly when now has reached the deadline, i.e. when no day remains."""
    now = deadline + offset
    due = expiry_due(deadline, now)
    assert due == (now >= deadline)
    assert due == (days_remaining(deadline, now) == 0)


def test_extension_counts_from_deadline_or_now() -> None:
    """An extension adds days to a future deadline, or to now once it has passed."""
    now = 1_800_000_000.0
    assert extended_deadline(now + 100, 7, now) == now + 100 + 7 * DAY_SECONDS
    assert extended_deadline(now - 100, 7, now) == now + 7 * DAY_SECONDS
    assert extended_deadline(None, 7, now) == now + 7 * DAY_SECONDS
    with pytest.raises(ValueError, match="days"):
        extended_deadline(now, -1, now)


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("kwargs", "state", "shown_days"),
    [
        ({"has_push": True}, "enrolled", None),
        ({"totp_status": "active"}, "enrolled", None),
        ({"totp_status": "pending"}, "grace", 3),
        ({}, "grace", 3),
        ({"deadline": NOW + 0.5}, "grace", 1),
        ({"deadline": NOW}, "expired", 0),
        ({"deadline": NOW - 10 * DAY_SECONDS}, "expired", 0),
        ({"deadline": None}, "expired", None),
        ({"mfa_required": False}, "grace", None),
        ({"locked": True}, "locked", 3),
        ({"locked": True, "has_push": True}, "locked", None),
        ({"locked": True, "deadline": NOW - 1}, "locked", 0),
    ],
)
def test_mfa_status_table(kwargs: dict[str, Any], state: str, shown_days: int | None) -> None:
    """Lock beats everything; an active factor is enrolled; pending TOTP is not a factor."""
    args: dict[str, Any] = {
        "mfa_required": True,
        "has_push": False,
        "totp_status": "none",
        "deadline": NOW + 2.5 * DAY_SECONDS,
        "locked": False,
        "now": NOW,
    }
    status = mfa_status(**{**args, **kwargs})
    assert status.state == state
    assert status.days_remaining == shown_days
    assert (status.enrollment_deadline is None) == (shown_days is None)


@given(
    mfa_required=st.booleans(),
    has_push=st.booleans(),
    totp_status=st.sampled_from(["none", "pending", "active"]),
    deadline=st.one_of(st.none(), times),
    locked=st.booleans(),
    now=times,
)
def test_only_required_unenrolled_users_past_deadline_expire(
    mfa_required: bool,
    has_push: bool,
    totp_status: Any,
    deadline: float | None,
    locked: bool,
    now: float,
) -> None:
    """state is expired exactly for required, unlocked users with no factor past the deadline."""
    status = mfa_status(
        mfa_required=mfa_required,
        has_push=has_push,
        totp_status=totp_status,
        deadline=deadline,
        locked=locked,
        now=now,
    )
    enrolled = has_push or totp_status == "active"
    past = deadline is None or now >= deadline
    assert (status.state == "expired") == (mfa_required and not enrolled and not locked and past)
    assert (status.state == "locked") == locked
    if status.days_remaining is not None:
        assert status.days_remaining >= 0
        assert (status.days_remaining == 0) == past


# Push fatigue


@given(policy=policies(), now=times, data=st.data())
def test_window_cap_allows_exactly_max_pushes(
    policy: Policy, now: float, data: st.DataObject
) -> None:
    """With fewer than max pushes in the window one more is allowed; at max it is refused."""
    window = policy.push_window_seconds
    inside = st.floats(now - window, now, exclude_min=True)
    count = data.draw(st.integers(0, policy.max_pushes_per_window))
    sent = data.draw(st.lists(inside, min_size=count, max_size=count))
    expected = (
        PushVerdict.ALLOWED if count < policy.max_pushes_per_window else PushVerdict.WINDOW_CAP
    )
    assert push_allowed(sent, 0, policy, now=now) == expected


@given(policy=policies(), now=times, data=st.data())
def test_pushes_older_than_the_window_do_not_count(
    policy: Policy, now: float, data: st.DataObject
) -> None:
    """Sends at or before now - push_window_seconds are ignored by the window cap."""
    old = st.floats(now - 10 * policy.push_window_seconds, now - policy.push_window_seconds)
    sent = data.draw(st.lists(old, max_size=200))
    assert pushes_in_window(sent, policy, now) == 0
    assert push_allowed(sent, 0, policy, now=now) == PushVerdict.ALLOWED


@given(policy=policies(), now=times, ahead=st.lists(st.floats(0.001, 3600.0), max_size=20))
def test_sends_stamped_after_now_count_toward_the_window(
    policy: Policy, now: float, ahead: list[float]
) -> None:
    """A send stamped later than now (a clock that stepped back) still counts: fail closed."""
    assert pushes_in_window([now + a for a in ahead], policy, now) == len(ahead)


@given(policy=policies(), unanswered=st.integers(0, 200))
def test_unanswered_cap_allows_up_to_max(policy: Policy, unanswered: int) -> None:
    """One more push is allowed while fewer than max_unanswered_pushes are unanswered."""
    verdict = push_allowed([], unanswered, policy, now=NOW)
    allowed = unanswered < policy.max_unanswered_pushes
    assert verdict == (PushVerdict.ALLOWED if allowed else PushVerdict.UNANSWERED_CAP)


@given(policy=policies(), now=times, offset=st.floats(0.0, 86400.0))
def test_fraud_block_beats_every_other_reason(policy: Policy, now: float, offset: float) -> None:
    """While a fraud block holds, the verdict is FRAUD_BLOCKED; after it the caps apply."""
    until = fraud_block_until(policy, now)
    if policy.fraud_block_seconds == 0:
        assert until is None
        return
    assert until == now + policy.fraud_block_seconds
    full = [now] * policy.max_pushes_per_window
    at = now + offset
    verdict = push_allowed(full, 1000, policy, now=at, fraud_blocked_until=until)
    if at < until:
        assert verdict == PushVerdict.FRAUD_BLOCKED
    else:
        assert verdict != PushVerdict.FRAUD_BLOCKED
