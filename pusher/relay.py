"""Copy audit events from the shards' outboxes to each tenant's capped event stream."""

from __future__ import annotations

from typing import Any

from approvals.store import keys

#: Append once per outbox entry (a marker survives a crash between append and ack).
RELAY_SCRIPT = """
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', 86400000) then
  return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 2))
end
return false
"""


class EventRelay:
    """Moves outbox entries into ``tenant_events`` streams exactly once per entry."""

    def __init__(self, redis: Any, *, maxlen: int) -> None:
        self._redis = redis
        self._maxlen = maxlen
        self._script = redis.register_script(RELAY_SCRIPT)

    async def relay(self, shard: int, entry_id: str, fields: dict[str, str]) -> bool:
        """Append one outbox entry to its tenant's stream; False if it was already there."""
        tenant = fields.get("tenant", "")
        stream = keys.tenant_events(tenant)
        marker = f"{stream}:relayed:{shard}:{entry_id}"
        flat: list[str] = []
        for name in ("type", "tenant", "user_id", "challenge_id", "device_id", "at", "data"):
            flat += [name, fields.get(name, "")]
        done = await self._script(keys=[stream, marker], args=[self._maxlen, *flat])
        return done is not None
