"""ServerClock's offset to Redis's TIME comes from its most precise reading."""

from __future__ import annotations

import asyncio

from approvals.store.clock import SYNC_SAMPLES, ServerClock


class _StalledFirstReply:
    """A host clock and a Redis whose first TIME reply is read 50 ms late (a busy event
    loop); Redis's clock is exactly the host's."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.calls = 0

    def host(self) -> float:
        return self.now

    async def time(self) -> tuple[int, int]:
        self.calls += 1
        self.now += 0.0002  # the request reaches Redis
        seconds, micros = int(self.now), round((self.now % 1) * 1e6)
        self.now += 0.0002 + (0.05 if self.calls == 1 else 0.0)  # the reply comes back
        return seconds, micros


def test_a_reply_read_late_does_not_put_the_clock_behind_redis() -> None:
    fake = _StalledFirstReply()
    clock = ServerClock(host=fake.host)
    asyncio.run(clock.sync(fake))
    assert fake.calls == SYNC_SAMPLES
    assert abs(clock.offset) < 0.001  # one reading alone would have said -25 ms
