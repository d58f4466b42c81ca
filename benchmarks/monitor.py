"""Count the commands clients send to Redis with MONITOR (round trips, not script work).

MONITOR shows commands that Lua scripts run with the source ``lua``; those are left
out, as are this module's own connection's commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator

_LINE = re.compile(rb'^\+[\d.]+ \[\d+ ([^\]]+)\] "([^"]+)"')


@contextlib.asynccontextmanager
async def counting(port: int) -> AsyncIterator[dict[str, int]]:
    """Yield a dict that fills with {command: count} until the block ends."""
    counts: dict[str, int] = {}
    # A script call that relays a batch of audit events is one long MONITOR line.
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**24)
    writer.write(b"MONITOR\r\n")
    await writer.drain()
    if not (await reader.readline()).startswith(b"+OK"):
        raise RuntimeError("MONITOR was refused")

    async def consume() -> None:
        while line := await reader.readline():
            match = _LINE.match(line)
            if match and match.group(1) != b"lua":
                name = match.group(2).decode().lower()
                counts[name] = counts.get(name, 0) + 1

    task = asyncio.create_task(consume())
    try:
        yield counts
        await asyncio.sleep(0.2)  # let the last lines arrive
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        writer.close()


@contextlib.asynccontextmanager
async def nothing() -> AsyncIterator[dict[str, int]]:
    """The same shape as :func:`counting`, counting nothing."""
    yield {}


def per_unit(counts: dict[str, int], units: int) -> dict[str, float]:
    return {k: round(v / units, 3) for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}
