"""User records in Redis (profile, role, MFA requirement, lock and enrollment-period state)."""

from __future__ import annotations

from approvals.store.backend import Backend, decode_hash


class UserStore:
    """The only code that touches user profile keys."""

    def __init__(self, backend: Backend) -> None:
        self._b = backend

    async def put(
        self, tenant: str, user_id: str, fields: dict[str, str], now_ms: int
    ) -> tuple[bool, dict[str, str]]:
        """Create or update a user; returns (created, record). Starts the enrollment
        period the first time MFA is required."""
        uk = self._b.user_keys(tenant, user_id)
        pipe = self._b.redis.pipeline(transaction=True)
        pipe.hsetnx(uk.user, "created_at", str(now_ms))
        pipe.hset(uk.user, mapping={"tenant": tenant, "user_id": user_id, **fields})
        if fields.get("mfa_required") == "1":
            pipe.hsetnx(uk.user, "mfa_started_at", str(now_ms))
        pipe.hgetall(uk.user)
        replies = await pipe.execute()
        return bool(replies[0]), decode_hash(replies[-1])

    async def get(self, tenant: str, user_id: str) -> tuple[dict[str, str] | None, int]:
        """The user record (None if unknown) and the number of enrolled devices."""
        uk = self._b.user_keys(tenant, user_id)
        pipe = self._b.redis.pipeline(transaction=False)
        pipe.hgetall(uk.user)
        pipe.scard(uk.devices)
        record, devices = await pipe.execute()
        decoded = decode_hash(record)
        return (decoded or None), int(devices)
