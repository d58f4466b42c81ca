"""The lockout and fatigue rules agree in Python (policies.decide) and in Lua (_lib.lua).

A small script runs the library's rule functions, the ones every script decides with, on the
test session's server; the Python functions get the same inputs. Times are drawn in whole
milliseconds, as the scripts keep them, and handed to Python as exact fractions of a second,
so both sides compare the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from approvals.store.scripts import with_library
from policies.decide import (
    PushVerdict,
    attempt_limit,
    is_locked,
    lock_retry_after,
    push_allowed,
    register_failure,
)
from policies.policy import Policy
from pushgate.embedded import EmbeddedRedis

EXAMPLES = 150
WINDOW_KEY = "{rules}:window"

RULES = """
-- KEYS: 1 a scratch sorted set for send times. ARGV: 1 rule, 2 now ms, then its inputs.
local rule, now = ARGV[1], tonumber(ARGV[2])
local function absent(v) if v == '' then return false end return v end
if rule == 'lock' then  -- 3 locked, 4 locked_until ('' = field absent)
  local ends = lock_end(absent(ARGV[3]), absent(ARGV[4]), now)
  return ends and tostring(ends) or false
end
if rule == 'failure' then  -- 3 failures (this one counted), 4 limit, 5 lock ms
  local ends = lock_after_failure(tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), now)
  return ends and tostring(ends) or false
end
-- 'push': 3 fraud_until ('' = none), 4 window ms, 5 unanswered, 6 max pushes,
-- 7 max unanswered, 8... send times; checked in create_challenge's order
redis.call('DEL', KEYS[1])
for i = 8, #ARGV do redis.call('ZADD', KEYS[1], ARGV[i], tostring(i)) end
if fraud_blocked(absent(ARGV[3]), now) then return 'fraud_blocked' end
local cap = push_cap(pushes_in_window(KEYS[1], now, tonumber(ARGV[4])), tonumber(ARGV[5]),
  tonumber(ARGV[6]), tonumber(ARGV[7]))
if cap == 'window' then return 'window_cap' end
if cap == 'unanswered' then return 'unanswered_cap' end
return 'allowed'
"""

times_ms = st.integers(0, 4_000_000_000_000)


def seconds(ms: int) -> Any:
    """``ms`` as exact seconds (a Fraction, which the rules compute with like a float)."""
    return Fraction(ms, 1000)


@pytest.fixture(scope="module")
def rules(redis_server: EmbeddedRedis) -> Iterator[Any]:
    """The rule script, registered on the session's server."""
    if not redis_server.running:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client.register_script(with_library(RULES, cluster=False))
    client.close()


def near(ms: st.SearchStrategy[int], around: int, spread: int) -> st.SearchStrategy[int]:
    """Any time, or one within ``spread`` ms of ``around`` (where the boundaries are)."""
    return st.one_of(ms, st.integers(around - spread, around + spread))


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    locked=st.sampled_from(["", "1", "0"]),
    locked_until=st.one_of(st.none(), st.integers(-10_000, 4_000_000_000_000)),
    data=st.data(),
)
def test_a_stored_lock_holds_in_both_exactly_when_python_says_so(
    rules: Any, locked: str, locked_until: int | None, data: st.DataObject
) -> None:
    """lock_end and is_locked agree on whether a lock holds, and on which locks last until
    an admin unlocks (no Retry-After), for every stored value, at and around its end."""
    now = data.draw(near(times_ms, locked_until or 0, 2))
    reply = rules(
        keys=[WINDOW_KEY], args=["lock", now, locked, "" if locked_until is None else locked_until]
    )
    python_until = None if locked != "1" else seconds(locked_until or 0)
    held = is_locked(python_until, seconds(now))
    assert (reply is not None) == held
    assert (reply == "0") == (held and lock_retry_after(python_until, seconds(now)) is None)
    if reply not in (None, "0"):
        assert seconds(int(reply)) == python_until


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    failures_before=st.integers(0, 12),
    max_attempts=st.integers(1, 10),
    lockout_seconds=st.integers(0, 86400),
    is_admin=st.booleans(),
    now=times_ms,
)
def test_a_failed_totp_attempt_locks_in_both_at_the_same_count_until_the_same_time(
    rules: Any,
    failures_before: int,
    max_attempts: int,
    lockout_seconds: int,
    is_admin: bool,
    now: int,
) -> None:
    """lock_after_failure and register_failure take the same lock (or none) on a failure."""
    policy = Policy(totp_max_attempts=max_attempts, lockout_seconds=lockout_seconds)
    limit = attempt_limit(policy, is_admin=is_admin)
    outcome = register_failure(failures_before, policy, is_admin=is_admin, now=seconds(now))
    reply = rules(
        keys=[WINDOW_KEY],
        args=["failure", now, outcome.failures, limit, lockout_seconds * 1000],
    )
    assert outcome.failures == failures_before + 1
    if reply is None:
        assert outcome.locked_until is None
    else:
        assert outcome.locked_until == seconds(int(reply))


@st.composite
def fatigue(draw: st.DrawFn) -> tuple[Policy, int, int | None, list[int], int]:
    """A policy, now, a fraud block end (or none), earlier sends and the unanswered count,
    crowded around the window's edge, the block's end and the caps."""
    policy = Policy(
        max_pushes_per_window=draw(st.integers(1, 8)),
        push_window_seconds=draw(st.integers(60, 86400)),
        max_unanswered_pushes=draw(st.integers(1, 8)),
    )
    now = draw(st.integers(100_000_000, 4_000_000_000_000))
    window_ms = policy.push_window_seconds * 1000
    edge = now - window_ms
    sent = draw(
        st.lists(
            st.one_of(
                st.integers(edge - 2, edge + 2),
                st.integers(now - 2, now + 2),
                st.integers(edge - window_ms, now + 2),
            ),
            max_size=12,
        )
    )
    fraud_until = draw(st.one_of(st.none(), st.integers(now - 2, now + 2), times_ms))
    unanswered = draw(st.integers(0, 10))
    return policy, now, fraud_until, sent, unanswered


@settings(max_examples=EXAMPLES, deadline=None)
@given(case=fatigue())
def test_one_more_push_is_allowed_or_refused_for_the_same_reason_in_both(
    rules: Any, case: tuple[Policy, int, int | None, list[int], int]
) -> None:
    """fraud_blocked, pushes_in_window and push_cap decide like push_allowed."""
    policy, now, fraud_until, sent, unanswered = case
    verdict = push_allowed(
        [seconds(t) for t in sent],
        unanswered,
        policy,
        now=seconds(now),
        fraud_blocked_until=None if fraud_until is None else seconds(fraud_until),
    )
    reply = rules(
        keys=[WINDOW_KEY],
        args=[
            "push",
            now,
            "" if fraud_until is None else fraud_until,
            policy.push_window_seconds * 1000,
            unanswered,
            policy.max_pushes_per_window,
            policy.max_unanswered_pushes,
            *sent,
        ],
    )
    assert PushVerdict(reply) == verdict
