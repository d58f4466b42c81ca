"""A tenant's webhook and its delivery state: a cursor into the tenant stream and a queue of
deliveries scored by their next attempt, so any worker (or a restarted one) continues."""

from __future__ import annotations

import json
from dataclasses import dataclass

from approvals.store import keys
from approvals.store.backend import Backend, decode_hash

#: how long the latest delivery failure stays readable
LAST_ERROR_KEEP_MS = 7 * 24 * 3600 * 1000


def secret_context(tenant: str) -> str:
    """The sealing context of a tenant's webhook signing secret."""
    return f"webhook:{tenant}"


@dataclass(frozen=True, slots=True)
class Webhook:
    """The stored configuration (the secret stays sealed)."""

    url: str
    events: list[str]
    sealed_secret: str
    created_at: int
    updated_at: int
    last_error: DeliveryError | None = None


@dataclass(frozen=True, slots=True)
class DeliveryError:
    """Why the latest failed delivery failed (a refused address, an HTTP status, a timeout)."""

    event_id: str
    error: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """One leased delivery: the event, which attempt this is, and when it was queued."""

    event_id: str
    attempt: int
    since_ms: int


class WebhookStore:
    """The only code that touches webhook keys (all in the tenant stream's hash tag)."""

    def __init__(self, backend: Backend) -> None:
        self._b = backend

    async def put(self, tenant: str, *, url: str, events: list[str], sealed_secret: str) -> bool:
        """Create or replace the webhook; True if one was replaced."""
        replaced = await self._b.scripts.webhook_put(
            keys=[keys.webhook(tenant), keys.webhook_cursor(tenant), keys.tenant_events(tenant)],
            args=[self._b.shift_ms, url, json.dumps(events), sealed_secret],
        )
        await self._b.redis.sadd(keys.WEBHOOK_TENANTS, tenant)
        return int(replaced) == 1

    async def get(self, tenant: str) -> Webhook | None:
        """The tenant's webhook with its latest delivery failure, or None (one round trip)."""
        pipe = self._b.redis.pipeline(transaction=False)
        pipe.hgetall(keys.webhook(tenant))
        pipe.hgetall(keys.webhook_last_error(tenant))
        raw_hook, raw_failure = await pipe.execute()
        record, failed = decode_hash(raw_hook), decode_hash(raw_failure)
        if not record:
            return None
        last_error = None
        if failed.get("at", "").isdigit():
            last_error = DeliveryError(
                failed.get("event", ""), failed.get("error", ""), int(failed["at"])
            )
        return Webhook(
            url=record["url"],
            events=list(json.loads(record["events"])),
            sealed_secret=record["secret"],
            created_at=int(record["created_at"]),
            updated_at=int(record["updated_at"]),
            last_error=last_error,
        )

    async def delete(self, tenant: str) -> bool:
        """Remove the webhook and drop its queued deliveries; False if there was none."""
        removed = await self._b.redis.delete(
            keys.webhook(tenant),
            keys.webhook_cursor(tenant),
            keys.webhook_due(tenant),
            keys.webhook_tries(tenant),
            keys.webhook_since(tenant),
            keys.webhook_last_error(tenant),
        )
        await self._b.redis.srem(keys.WEBHOOK_TENANTS, tenant)
        return int(removed) > 0

    async def tenants(self) -> list[str]:
        """Tenants that have a webhook."""
        return sorted(str(t) for t in await self._b.redis.smembers(keys.WEBHOOK_TENANTS))

    async def ingest(self, tenant: str, count: int = 500) -> int:
        """Queue the wanted events that arrived since the cursor; returns how many."""
        queued, _ = await self._b.scripts.webhook_ingest(
            keys=[
                keys.webhook(tenant),
                keys.webhook_cursor(tenant),
                keys.tenant_events(tenant),
                keys.webhook_due(tenant),
                keys.webhook_since(tenant),
            ],
            args=[self._b.shift_ms, count],
        )
        return int(queued)

    async def claim(self, tenant: str, *, lease_ms: int, count: int) -> list[Delivery]:
        """Lease up to ``count`` due deliveries (each counts one more attempt)."""
        flat = await self._b.scripts.webhook_claim(
            keys=[keys.webhook_due(tenant), keys.webhook_tries(tenant), keys.webhook_since(tenant)],
            args=[self._b.shift_ms, lease_ms, count],
        )
        return [
            Delivery(str(flat[i]), int(flat[i + 1]), int(flat[i + 2]))
            for i in range(0, len(flat) - 2, 3)
        ]

    async def finish(self, tenant: str, event_id: str) -> None:
        """Forget a delivery: it succeeded, or its retries ran out."""
        # No MULTI (redis-py runs Cluster transactions on a private event loop in a thread);
        # leftover counters of a finished delivery are harmless.
        pipe = self._b.redis.pipeline(transaction=False)
        pipe.zrem(keys.webhook_due(tenant), event_id)
        pipe.hdel(keys.webhook_tries(tenant), event_id)
        pipe.hdel(keys.webhook_since(tenant), event_id)
        await pipe.execute()

    async def retry_at(self, tenant: str, event_id: str, at_ms: int) -> None:
        """Schedule the next attempt (only while the delivery is still queued)."""
        await self._b.redis.zadd(keys.webhook_due(tenant), {event_id: at_ms}, xx=True)

    async def record_failure(self, tenant: str, failure: DeliveryError) -> None:
        """Keep the latest failure on the webhook (only while it exists), for ``GET``."""
        key = keys.webhook_last_error(tenant)
        pipe = self._b.redis.pipeline(transaction=False)
        pipe.hset(key, mapping={"event": failure.event_id, "error": failure.error[:300]})
        pipe.hset(key, "at", failure.at_ms)
        pipe.pexpire(key, LAST_ERROR_KEEP_MS)
        await pipe.execute()

    async def queued(self, tenant: str) -> int:
        """Deliveries still queued (due now or later)."""
        return int(await self._b.redis.zcard(keys.webhook_due(tenant)))
