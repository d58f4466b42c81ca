"""The tenant's audit stream, read in pages (the worker's relay writes it)."""

from __future__ import annotations

from typing import Any

from approvals.events import event_item
from approvals.store import keys
from approvals.store.backend import Backend


class EventStore:
    """Reads ``keys.tenant_events``; every entry id is the event id."""

    def __init__(self, backend: Backend) -> None:
        self._b = backend

    async def page(self, tenant: str, after: str | None, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` events strictly after the event ``after`` (from the oldest)."""
        start = f"({after}" if after else "-"
        entries = await self._b.redis.xrange(keys.tenant_events(tenant), start, "+", count=limit)
        return [event_item(str(entry_id), fields) for entry_id, fields in entries]

    async def get(self, tenant: str, event_id: str) -> dict[str, Any] | None:
        """One event by id, or None when it was trimmed away."""
        entries = await self._b.redis.xrange(
            keys.tenant_events(tenant), event_id, event_id, count=1
        )
        return event_item(str(entries[0][0]), entries[0][1]) if entries else None
