"""User records in Redis (profile, role, MFA requirement, lock and enrollment-period state)."""

from __future__ import annotations

from typing import Final

from approvals.store import keys
from approvals.store.backend import Backend, decode_hash
from policies.decide import DAY_SECONDS, REMINDER_LEAD_SECONDS, extended_deadline

DAY_MS: Final = DAY_SECONDS * 1000
REMINDER_LEAD_MS: Final = REMINDER_LEAD_SECONDS * 1000
_EXTEND_TRIES: Final = 5


class UserStore:
    """The only code that touches user profile keys."""

    def __init__(self, backend: Backend) -> None:
        self._b = backend

    async def put(
        self,
        tenant: str,
        user_id: str,
        fields: dict[str, str],
        *,
        period_days: int,
    ) -> tuple[bool, dict[str, str]]:
        """Create or update a user; returns (created, record). An enrollment period of
        ``period_days`` starts when MFA becomes required (see ``put_user.lua``)."""
        uk = self._b.user_keys(tenant, user_id)
        pairs: list[str] = []
        for name, value in fields.items():
            pairs += [name, value]
        created, record = await self._b.scripts.put_user(
            keys=[uk.user, keys.enrollment_index(uk.shard)],
            args=[
                self._b.shift_ms,
                tenant,
                user_id,
                period_days * DAY_MS,
                REMINDER_LEAD_MS,
                keys.enrollment_member(tenant, user_id),
                *pairs,
            ],
        )
        return bool(int(created)), decode_hash(record)

    async def get(self, tenant: str, user_id: str) -> tuple[dict[str, str] | None, int]:
        """The user record (None if unknown) and the number of enrolled devices."""
        uk = self._b.user_keys(tenant, user_id)
        pipe = self._b.redis.pipeline(transaction=False)
        pipe.hgetall(uk.user)
        pipe.scard(uk.devices)
        record, devices = await pipe.execute()
        decoded = decode_hash(record)
        return (decoded or None), int(devices)

    async def unlock(self, tenant: str, user_id: str) -> bool:
        """Clear the user's lock and counters (emits ``user.unlocked``); False if unknown."""
        uk = self._b.user_keys(tenant, user_id)
        done = await self._b.scripts.unlock_user(
            keys=[uk.user, keys.outbox(uk.shard)],
            args=[self._b.shift_ms, tenant, user_id, self._b.outbox_maxlen],
        )
        return int(done) == 1

    async def extend_enrollment(
        self, tenant: str, user_id: str, days: int, now_ms: int
    ) -> int | None:
        """Extend the enrollment period by ``days`` (from the deadline, or from now once it
        has passed); returns the new deadline in ms, None if the user is unknown."""
        uk = self._b.user_keys(tenant, user_id)
        for _ in range(_EXTEND_TRIES):
            current = await self._b.redis.hget(uk.user, "enrollment_deadline")
            deadline_s = None if current is None else int(current) / 1000
            new_ms = int(extended_deadline(deadline_s, days, now_ms / 1000) * 1000)
            result = await self._b.scripts.extend_enrollment(
                keys=[uk.user, keys.enrollment_index(uk.shard)],
                args=[
                    self._b.shift_ms,
                    current or "",
                    new_ms,
                    keys.enrollment_member(tenant, user_id),
                    REMINDER_LEAD_MS,
                ],
            )
            if result == "not_found":
                return None
            if result == "ok":
                return new_ms
        raise RuntimeError("enrollment deadline kept changing; try again")

    async def enrollment_due(self, now_ms: int, limit: int = 200) -> dict[int, list[str]]:
        """Members of the enrollment indexes whose reminder or deadline is due, by shard
        (every shard in one pipelined read; shards that could not be read are left out)."""
        return await self._b.due_in_each_shard(keys.enrollment_index, now_ms, limit)

    async def enrollment_tick(self, shard: int, member: str) -> str:
        """Run the scheduler's step for one indexed user: ``reminded`` | ``expired`` |
        ``waiting`` | ``done`` | ``dropped``."""
        tenant, _, user_id = member.partition("|")
        uk = keys.UserKeys(shard, tenant, user_id)
        result = await self._b.scripts.enrollment_tick(
            keys=[keys.enrollment_index(shard), uk.user, uk.devices, keys.outbox(shard)],
            args=[
                self._b.shift_ms,
                member,
                tenant,
                user_id,
                REMINDER_LEAD_MS,
                self._b.outbox_maxlen,
            ],
        )
        return str(result)
