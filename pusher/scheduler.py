"""Enrollment-period reminders and expiries (SPEC §6), each emitted once per deadline.

Every shard keeps an index of users in an enrollment period, scored by the time of their
next step (reminder 24 h before the deadline, then the deadline). Any number of workers may
walk it: each step is one script that records what it emitted, so a race emits nothing twice.
"""

from __future__ import annotations

import asyncio

from approvals.store.clock import ServerClock
from approvals.store.users import UserStore
from pusher.metrics import WorkerMetrics

BATCH = 200


class EnrollmentScheduler:
    """Walks the shards' enrollment indexes and runs the due steps."""

    def __init__(
        self,
        users: UserStore,
        *,
        shards: int,
        clock: ServerClock,
        metrics: WorkerMetrics,
        interval: float,
    ) -> None:
        self._users = users
        self._shards = shards
        self._clock = clock
        self._metrics = metrics
        self._interval = interval

    async def tick(self) -> int:
        """One pass over every shard; returns how many events it emitted."""
        emitted = 0
        now_ms = int(self._clock() * 1000)
        for shard, members in (await self._users.enrollment_due(now_ms, BATCH)).items():
            for member in members:
                result = await self._users.enrollment_tick(shard, member)
                if result in ("reminded", "expired"):
                    self._metrics.enrollment_events.labels(result).inc()
                    emitted += 1
        return emitted

    async def run(self, stopping: asyncio.Event) -> None:
        """Tick until ``stopping`` is set (the worker also cancels it on stop)."""
        while not stopping.is_set():
            await self.tick()
            await asyncio.sleep(self._interval)
