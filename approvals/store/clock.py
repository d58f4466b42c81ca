"""The one clock every time-based decision is made with: the Redis server's own ``TIME``.

Every Lua script reads ``TIME`` itself (``server_ms`` in ``_lib.lua``), so a lockout's end, a
fraud block, a challenge's deadline, a fatigue window or an enrollment deadline is decided the
same way whichever gateway or worker asks, whatever its host's clock says. Python code needs
the time too (the views it renders, a waiter's timer, which TOTP step a code is for, which
index entries are due): it uses :class:`ServerClock`, its host's clock corrected by the offset
to Redis's ``TIME`` measured at start and every 30 seconds. On a Cluster, ``TIME`` comes from
the primary that runs the script; primaries are expected to run NTP.

``shift`` moves the clock for everyone who uses this object, scripts included (each script
adds it to ``TIME``): it is 0 in production and lets tests make time pass without sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

SYNC_SECONDS = 30.0
#: TIME readings per sync; the one with the shortest round trip sets the offset
SYNC_SAMPLES = 3


class ServerClock:
    """Redis's time, as seen from this process; callable (epoch seconds)."""

    def __init__(self, host: Callable[[], float] = time.time) -> None:
        self.host = host  # this machine's wall clock (tests inject a skewed one)
        self.offset = 0.0  # Redis TIME minus the host clock, from the last sync
        self.shift = 0.0  # tests only: seconds added for everyone, scripts included

    def __call__(self) -> float:
        """The current time in epoch seconds."""
        return self.host() + self.offset + self.shift

    def now_ms(self) -> int:
        """The current time in epoch milliseconds."""
        return int(self() * 1000)

    def shift_ms(self) -> int:
        """What every script adds to ``TIME`` (0 in production)."""
        return int(self.shift * 1000)

    async def sync(self, redis: Any) -> None:
        """Measure the offset between Redis's TIME and the host clock.

        Takes ``SYNC_SAMPLES`` readings and keeps the one with the shortest round trip: a
        reading whose reply waited behind a busy event loop (a garbage collection, start-up
        work) would put this clock behind Redis's by half that wait for the next 30 s. The
        uncertainty left is half the shortest round trip, sub-millisecond on a LAN.
        """
        readings: list[tuple[float, float]] = []  # (round trip, offset)
        for _ in range(SYNC_SAMPLES):
            before = self.host()
            seconds, micros = await redis.time()
            after = self.host()
            offset = int(seconds) + int(micros) / 1e6 - (before + after) / 2
            readings.append((after - before, offset))
        self.offset = min(readings)[1]


async def first_sync(clock: ServerClock, redis: Any) -> bool:
    """Sync before serving (within 2 s); False when Redis does not answer (yet)."""
    try:
        async with asyncio.timeout(2.0):
            await clock.sync(redis)
    except (RedisError, OSError):  # TimeoutError included
        return False
    return True


async def keep_in_time(clock: ServerClock, redis: Any) -> None:
    """Sync ``clock`` with Redis now and every 30 seconds, for ever (a task the process
    cancels on exit); while Redis is unreachable the last offset stays in use."""
    while True:
        try:
            await clock.sync(redis)
        except (RedisError, OSError):  # TimeoutError included
            await asyncio.sleep(1.0)
            continue
        await asyncio.sleep(SYNC_SECONDS)
