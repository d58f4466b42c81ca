"""TOTP keys in Redis: enrollment, confirmation, single-use steps, failure counting and lock.

The caller opens the sealed secret and matches the code (``approvals.totp``); the scripts
decide everything that a race could break, in one step each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from approvals.store import keys
from approvals.store.backend import Backend
from approvals.store.outcomes import TotpResult
from approvals.store.users import DAY_MS, REMINDER_LEAD_MS
from approvals.totp import WINDOW, step_at, step_usable_until

Purpose = Literal["verify", "challenge", "reset"]
FailureKind = Literal["invalid", "malformed"]


@dataclass(frozen=True, slots=True)
class TotpOutcome:
    """What a TOTP script decided. ``failures`` is the count after a failed attempt;
    ``locked_until_ms`` is set for ``locked`` (0 = until an admin unlocks)."""

    result: TotpResult
    failures: int = 0
    locked_until_ms: int | None = None


def _outcome(reply: Any) -> TotpOutcome:
    result = TotpResult(str(reply[0]))
    if result is TotpResult.LOCKED:
        return TotpOutcome(result, locked_until_ms=int(reply[1]))
    if result is TotpResult.INVALID and len(reply) > 1:
        return TotpOutcome(result, failures=int(reply[1]))
    return TotpOutcome(result)


def _step_args(step: int | None, now_s: float) -> tuple[int, int]:
    """(oldest step that can still match, how long a record of ``step`` must live in ms)."""
    oldest = step_at(now_s) - WINDOW
    last = step if step is not None else step_at(now_s) + WINDOW
    ttl_ms = int((step_usable_until(last) - now_s) * 1000) + 1000
    return oldest, max(1000, ttl_ms)


class TotpStore:
    """The only code that touches TOTP state (kept in the user hash and its steps set)."""

    def __init__(self, backend: Backend) -> None:
        self._b = backend

    async def enroll(
        self, tenant: str, user_id: str, *, sealed: str, period_days: int
    ) -> TotpOutcome:
        """Store a new pending key (``ok``), unless one is ``active`` or the user is
        ``locked``. Creates an unknown user with defaults."""
        uk = self._b.user_keys(tenant, user_id)
        reply = await self._b.scripts.totp_enroll(
            keys=[uk.user, uk.totp_steps, keys.outbox(uk.shard), keys.enrollment_index(uk.shard)],
            args=[
                self._b.shift_ms,
                tenant,
                user_id,
                sealed,
                period_days * DAY_MS,
                REMINDER_LEAD_MS,
                keys.enrollment_member(tenant, user_id),
                self._b.outbox_maxlen,
            ],
        )
        return _outcome(reply)

    async def confirm(
        self,
        tenant: str,
        user_id: str,
        *,
        sealed: str,
        steps: tuple[int, int] | None,
        now_ms: int,
    ) -> TotpOutcome:
        """Activate the pending key whose two consecutive codes matched ``steps``
        (None: they did not), using both steps up."""
        uk = self._b.user_keys(tenant, user_id)
        oldest, ttl_ms = _step_args(steps[1] if steps else None, now_ms / 1000)
        first, second = (str(steps[0]), str(steps[1])) if steps else ("", "")
        reply = await self._b.durability.run(
            self._b.scripts.totp_confirm,
            [uk.user, uk.totp_steps, keys.outbox(uk.shard)],
            [
                self._b.shift_ms,
                tenant,
                user_id,
                sealed,
                first,
                second,
                oldest,
                ttl_ms,
                self._b.outbox_maxlen,
            ],
        )
        return _outcome(reply)

    async def attempt(
        self,
        tenant: str,
        user_id: str,
        *,
        sealed: str,
        step: int | None,
        failure: FailureKind,
        limit: int,
        lockout_ms: int,
        purpose: Purpose,
        now_ms: int,
        challenge_id: str = "",
        new_sealed: str = "",
    ) -> TotpOutcome:
        """Record one attempt with the active key: the matched ``step`` is accepted once
        (``ok``, or ``replayed``); no match (``step`` None) counts one failure, and the
        failure that reaches ``limit`` locks the user for ``lockout_ms`` from the server's
        now (0: until an admin unlocks).
        A ``reset`` that succeeds replaces the key with ``new_sealed``, pending."""
        uk = self._b.user_keys(tenant, user_id)
        oldest, ttl_ms = _step_args(step, now_ms / 1000)
        reply = await self._b.durability.run(
            self._b.scripts.totp_attempt,
            [uk.user, uk.totp_steps, keys.outbox(uk.shard), uk.devices],
            [
                self._b.shift_ms,
                tenant,
                user_id,
                sealed,
                "" if step is None else str(step),
                failure,
                limit,
                lockout_ms,
                oldest,
                ttl_ms,
                purpose,
                challenge_id,
                self._b.outbox_maxlen,
                new_sealed,
            ],
        )
        return _outcome(reply)

    async def remove(self, tenant: str, user_id: str) -> bool:
        """Delete the user's key (pending or active); False when there is none."""
        uk = self._b.user_keys(tenant, user_id)
        done = await self._b.durability.run(
            self._b.scripts.totp_remove,
            [uk.user, uk.totp_steps, keys.outbox(uk.shard)],
            [self._b.shift_ms, tenant, user_id, self._b.outbox_maxlen],
        )
        return int(done) == 1
