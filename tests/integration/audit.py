"""Reading the audit trail in integration tests (the worker relays events asynchronously)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.portal import Portal


async def all_events(admin: Portal) -> list[dict[str, Any]]:
    """Every event of the tenant, following ``next`` through the pages."""
    items: list[dict[str, Any]] = []
    after = ""
    while True:
        query = f"?limit=1000&after={after}" if after else "?limit=1000"
        page = await admin.call("GET", f"/v1/events{query}")
        assert page.status == 200, page.body
        items += page.body["items"]
        if page.body["next"] is None:
            return items
        after = page.body["next"]


async def wait_for_events(
    admin: Portal, event_type: str, count: int = 1, timeout: float = 10
) -> list[dict[str, Any]]:
    """Poll until at least ``count`` events of ``event_type`` arrived; returns them."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = [e for e in await all_events(admin) if e["type"] == event_type]
        if len(found) >= count or loop.time() > deadline:
            return found
        await asyncio.sleep(0.05)


async def settled_events(admin: Portal, quiet: float = 0.6) -> list[dict[str, Any]]:
    """The events once the stream has stopped growing for ``quiet`` seconds."""
    before = await all_events(admin)
    while True:
        await asyncio.sleep(quiet)
        after = await all_events(admin)
        if len(after) == len(before):
            return after
        before = after
