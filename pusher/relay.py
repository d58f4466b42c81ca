"""Copy audit events from the shards' outboxes to each tenant's capped event stream."""

from __future__ import annotations

from typing import Any

from approvals.store import keys

#: Append each outbox entry once (a marker per entry survives a crash between append and
#: ack). KEYS: the tenant's stream, then one marker per entry; ARGV: maxlen, then the entries'
#: field/value lists, FIELDS pairs each. Every key carries the tenant's hash tag: one slot.
RELAY_SCRIPT = """
local width = 2 * tonumber(ARGV[2])
local appended = 0
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'PX', 86400000) then
    local first = 3 + (i - 2) * width
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, first, first + width - 1))
    appended = appended + 1
  end
end
return appended
"""
FIELDS = ("type", "tenant", "user_id", "challenge_id", "device_id", "at", "data")


class EventRelay:
    """Moves outbox entries into ``tenant_events`` streams exactly once per entry."""

    def __init__(self, redis: Any, *, maxlen: int) -> None:
        self._redis = redis
        self._maxlen = maxlen
        self._script = redis.register_script(RELAY_SCRIPT)

    async def relay(self, shard: int, entries: list[tuple[str, dict[str, str]]]) -> int:
        """Append outbox entries to their tenants' streams, one script call per tenant in the
        batch; returns how many were not there yet."""
        by_tenant: dict[str, list[tuple[str, dict[str, str]]]] = {}
        for entry_id, fields in entries:
            by_tenant.setdefault(fields.get("tenant", ""), []).append((entry_id, fields))
        appended = 0
        for tenant, group in by_tenant.items():
            stream = keys.tenant_events(tenant)
            markers = [f"{stream}:relayed:{shard}:{entry_id}" for entry_id, _ in group]
            flat: list[str] = []
            for _, fields in group:
                for name in FIELDS:
                    flat += [name, fields.get(name, "")]
            args = [self._maxlen, len(FIELDS), *flat]
            appended += int(await self._script(keys=[stream, *markers], args=args))
        return appended
