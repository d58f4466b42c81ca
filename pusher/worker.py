"""The push worker: consumes every shard's job stream, sweeps expiries, relays audit events."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from redis.exceptions import RedisError, ResponseError

from approvals.secretbox import SecretBox
from approvals.store import keys
from approvals.store.backend import Backend, open_backend
from approvals.store.challenges import ChallengeStore
from approvals.store.clock import ServerClock, first_sync, keep_in_time
from approvals.store.deliveries import JOBS_GROUP, DeliveryStore, Job
from approvals.store.devices import DeviceStore
from approvals.store.events import EventStore
from approvals.store.outcomes import EndResult
from approvals.store.tenants import TenantStore
from approvals.store.users import UserStore
from approvals.store.webhooks import WebhookStore
from pusher.delivery import Delivery
from pusher.metrics import WorkerMetrics
from pusher.providers.base import PushProvider
from pusher.relay import EventRelay
from pusher.scheduler import EnrollmentScheduler
from pusher.streams import ShardStreams
from pusher.webhooks import WebhookSender
from pushgate.logs import get_logger
from pushgate.settings import Settings

log = get_logger("pusher.worker")

RELAY_GROUP = "relay"
RECLAIM_IDLE_MS = 30_000
LOOP_RETRY_FIRST = 0.02  # a loop that lost Redis tries again after this long, doubling
LOOP_RETRY_CAP = 0.25  # ... up to this, so a restarted Redis is used again at once
READY_TIMEOUT = 1.0  # seconds the readiness check waits for Redis's PING
LOOPS_STOP_SECONDS = 3.0  # loops end their Redis call in progress (a blocking read: ≤ 1 s)

__all__ = ["JOBS_GROUP", "RELAY_GROUP", "Worker"]


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class Worker:
    """One worker process (or task). Several workers share the work through consumer groups.

    ``backend`` is the Redis backend the composition root opened (the worker closes it on
    ``stop``; its clock is the worker's); without one the worker opens its own from
    ``settings``, deciding with ``clock``.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        providers: Mapping[str, PushProvider] | None = None,
        clock: ServerClock | None = None,
        backend: Backend | None = None,
        name: str | None = None,
        metrics: WorkerMetrics | None = None,
        reclaim_idle_ms: int = RECLAIM_IDLE_MS,
        sweep_interval: float = 0.5,
    ) -> None:
        self.settings = settings
        self.backend = backend or open_backend(settings, clock)
        self.clock = self.backend.clock
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{id(self):x}"
        self.metrics = metrics or WorkerMetrics()
        self.providers = dict(providers or {})
        self.reclaim_idle_ms = reclaim_idle_ms
        self.sweep_interval = sweep_interval
        self.challenges = ChallengeStore(self.backend)
        self.devices = DeviceStore(self.backend)
        self.tenants = TenantStore(self.backend)
        self.relay = EventRelay(self.backend.redis, maxlen=settings.events_maxlen)
        self._stopping = asyncio.Event()
        self.delivery = Delivery(
            store=DeliveryStore(self.backend),
            devices=self.devices,
            providers=self.providers,
            metrics=self.metrics,
            clock=self.clock,
            owner=self.name,
            send_timeout=settings.push_timeout_seconds,
            stopping=self._stopping,
        )
        self.scheduler = EnrollmentScheduler(
            UserStore(self.backend),
            shards=self.backend.shards,
            clock=self.clock,
            metrics=self.metrics,
            interval=sweep_interval,
        )
        self.webhooks = WebhookSender(
            WebhookStore(self.backend),
            EventStore(self.backend),
            SecretBox(settings.secret_key_bytes),
            clock=self.clock,
            metrics=self.metrics,
            interval=sweep_interval,
            allowed_networks=settings.webhook_allowed_networks,
        )
        self._slots = asyncio.Semaphore(settings.worker_concurrency)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._in_flight: dict[str, set[str]] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._clock_sync: asyncio.Task[None] | None = None
        self._backlog: dict[tuple[int, str], int] = {}
        self.observe_interval = 5.0

    @property
    def redis(self) -> Any:
        return self.backend.redis

    async def start(self) -> None:
        """Start providers and the loops (returns at once)."""
        await first_sync(self.clock, self.redis)
        for provider in self.providers.values():
            await provider.start()
        await self.webhooks.start()
        self._clock_sync = asyncio.create_task(keep_in_time(self.clock, self.redis), name="clock")
        self._loops = [
            asyncio.create_task(self._guarded(self._consume_jobs), name="jobs"),
            asyncio.create_task(self._guarded(self._reclaim_jobs), name="reclaim"),
            asyncio.create_task(self._guarded(self._keep_claims), name="keep-claims"),
            asyncio.create_task(self._guarded(self._sweep_expiries), name="sweep"),
            asyncio.create_task(self._guarded(self._relay_events), name="relay"),
            asyncio.create_task(self._guarded(self._observe_queue), name="observe"),
            asyncio.create_task(self._guarded(self._schedule_enrollment), name="enrollment"),
            asyncio.create_task(self._guarded(self._deliver_webhooks), name="webhooks"),
        ]

    async def stop(self, grace: float = 10.0) -> None:
        """Stop reading, let in-flight sends finish (up to ``grace``), close everything.
        Unacknowledged jobs stay pending and are reclaimed by another worker."""
        self._stopping.set()
        if self._clock_sync is not None:
            self._clock_sync.cancel()  # it sleeps between syncs: nothing to finish
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock_sync
        # Loops see the flag and leave between Redis calls; cancelling one in the middle of a
        # call can leave redis-py's connection half set up, so that is only the fallback.
        if self._loops:
            _, stuck = await asyncio.wait(self._loops, timeout=LOOPS_STOP_SECONDS)
            for loop in stuck:
                loop.cancel()
            for ended in await asyncio.gather(*self._loops, return_exceptions=True):
                if isinstance(ended, Exception):
                    log.info("worker_loop_ended_with_error", error=repr(ended))
        if self._tasks:
            _, still = await asyncio.wait(self._tasks, timeout=grace)
            for task in still:
                task.cancel()
            if still:
                log.info("worker_jobs_handed_back", count=len(still))
            await asyncio.gather(*still, return_exceptions=True)
        for provider in self.providers.values():
            await provider.close()
        await self.webhooks.close()
        await self.backend.close()

    async def run_until(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then stop gracefully."""
        await self.start()
        await stop.wait()
        await self.stop(self.settings.drain_seconds)

    async def ready(self) -> bool:
        """Whether this worker can deliver: not stopping, and Redis answers a PING."""
        if self._stopping.is_set():
            return False
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                return await self.backend.ping()
        except (RedisError, OSError, TimeoutError):
            return False

    async def _pause(self, seconds: float) -> bool:
        """Sleep, but return as soon as the worker is stopping; True while it is not."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return not self._stopping.is_set()

    async def _guarded(self, loop: Callable[[], Awaitable[None]]) -> None:
        """Run a loop forever; Redis outages pause it, they never kill the worker, and it
        runs again within ``LOOP_RETRY_CAP`` of Redis answering again."""
        delay = LOOP_RETRY_FIRST
        while not self._stopping.is_set():
            try:
                await loop()
                return
            except (RedisError, OSError) as exc:
                if _being_cancelled():
                    raise  # redis-py may turn a cancellation into a connection error
                if delay == LOOP_RETRY_FIRST:
                    log.warning("worker_backend_error", loop=loop.__name__, error=str(exc))
                await self._pause(delay)
                delay = min(delay * 2, LOOP_RETRY_CAP)

    async def _ensure_groups(self, stream_of: Callable[[int], str], group: str) -> None:
        for shard in range(self.backend.shards):
            with contextlib.suppress(ResponseError):  # BUSYGROUP: it exists already
                await self.redis.xgroup_create(stream_of(shard), group, id="0", mkstream=True)

    def _streams(self, stream_of: Callable[[int], str], group: str) -> ShardStreams:
        return ShardStreams(
            self.redis,
            cluster=self.backend.cluster,
            shards=self.backend.shards,
            stream_of=stream_of,
            group=group,
            consumer=self.name,
        )

    async def _consume_jobs(self) -> None:
        await self._ensure_groups(keys.jobs, JOBS_GROUP)

        async def start(stream: str, entries: list[Any]) -> None:
            for entry_id, fields in entries:
                await self._start_job(stream, entry_id, fields)

        await self._streams(keys.jobs, JOBS_GROUP).consume(128, start, self._stopping)

    async def _start_job(self, stream: str, entry_id: str, fields: dict[str, str]) -> None:
        """Run one job in the background once a concurrency slot is free."""
        await self._slots.acquire()
        task = asyncio.create_task(self._handle_job(stream, entry_id, fields))
        self._tasks.add(task)
        task.add_done_callback(self._job_done)

    def _job_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._slots.release()
        if not task.cancelled() and task.exception() is not None:
            log.warning("job_failed", error=repr(task.exception()))

    async def _handle_job(self, stream: str, entry_id: str, fields: dict[str, str]) -> None:
        """Deliver one job; the delivery scripts acknowledge it when it is done."""
        in_flight = self._in_flight.setdefault(stream, set())
        in_flight.add(entry_id)
        try:
            outcome = await self.delivery.run(Job.from_entry(stream, entry_id, fields))
            self.metrics.jobs.labels(outcome).inc()
        finally:
            in_flight.discard(entry_id)

    async def _keep_claims(self) -> None:
        """Reset the idle time of jobs still being delivered (long retries), so a healthy
        worker's jobs are never taken over and sent twice; a dead worker's jobs age."""
        while await self._pause(max(0.1, self.reclaim_idle_ms / 3000)):
            for stream, entry_ids in list(self._in_flight.items()):
                if entry_ids:
                    await self.redis.xclaim(
                        stream, JOBS_GROUP, self.name, 0, sorted(entry_ids), justid=True
                    )

    async def _reclaim_jobs(self) -> None:
        """Take over jobs and audit events another (dead) worker read but never acknowledged."""
        interval = max(0.2, self.reclaim_idle_ms / 2000)
        while await self._pause(interval):
            await self._per_shard(self._reclaim_shard)

    async def _reclaim_shard(self, shard: int) -> None:
        stream = keys.jobs(shard)
        for entry_id, fields in await self._reclaim(stream, JOBS_GROUP):
            self.metrics.jobs.labels("reclaimed").inc()
            await self._start_job(stream, entry_id, fields)
        outbox = keys.outbox(shard)
        events = await self._reclaim(outbox, RELAY_GROUP)
        if events:
            await self._relay_batch(outbox, events)

    async def _per_shard(self, step: Callable[[int], Awaitable[None]]) -> None:
        """Run ``step`` for every shard. On a Cluster a shard whose primary is down (failing
        over) is skipped this round instead of holding back the others; when every shard
        fails, the error goes to the loop's guard (Redis unreachable)."""
        failed: list[Exception] = []
        for shard in range(self.backend.shards):
            try:
                await step(shard)
            except (RedisError, OSError) as exc:
                failed.append(exc)
        if failed and (len(failed) == self.backend.shards or not self.backend.cluster):
            raise failed[0]
        if failed:
            log.warning("worker_shard_step_failed", shards=len(failed), error=str(failed[0]))

    async def _reclaim(self, stream: str, group: str) -> list[tuple[str, dict[str, str]]]:
        """Entries of ``group`` idle for the reclaim time, now this worker's (deleted ones are
        acknowledged by XAUTOCLAIM itself)."""
        try:
            reply = await self.redis.xautoclaim(
                stream, group, self.name, self.reclaim_idle_ms, "0-0", count=64
            )
        except ResponseError:  # NOGROUP: nothing was ever read from this stream
            return []
        return [(entry_id, fields) for entry_id, fields in reply[1] if fields is not None]

    async def _sweep_expiries(self) -> None:
        """End challenges whose deadline passed (the waiters' own timers are the fast path)."""
        while not self._stopping.is_set():
            due = await self.challenges.due_for_expiry(int(self.clock() * 1000))
            for shard, challenge_ids in due.items():
                with contextlib.suppress(RedisError, OSError):  # that shard again next time
                    await self._sweep_shard(shard, challenge_ids)
            await self._pause(self.sweep_interval)

    async def _sweep_shard(self, shard: int, challenge_ids: list[str]) -> None:
        for challenge_id in challenge_ids:
            record = await self.challenges.get(challenge_id)
            if record is None:
                await self.challenges.drop_from_expiry(shard, challenge_id)
                continue
            policy = await self.tenants.get_policy(record.tenant)
            outcome = await self.challenges.expire(
                record, retention_s=policy.result_retention_seconds
            )
            if outcome.result is EndResult.EXPIRED:
                self.metrics.expired.inc()
            elif outcome.result is not EndResult.PENDING:
                await self.challenges.drop_from_expiry(shard, challenge_id)

    async def _relay_events(self) -> None:
        """Copy audit events to the tenants' streams: one pipeline and one XACK per batch."""
        await self._ensure_groups(keys.outbox, RELAY_GROUP)
        streams = self._streams(keys.outbox, RELAY_GROUP)
        await streams.consume(256, self._relay_batch, self._stopping)

    async def _relay_batch(self, stream: str, entries: list[Any]) -> None:
        batch = [(entry_id, fields) for entry_id, fields in entries if fields is not None]
        relayed = await self.relay.relay(keys.shard_of_key(stream), batch)
        self.metrics.events_relayed.inc(relayed)
        await self.redis.xack(stream, RELAY_GROUP, *(entry_id for entry_id, _ in entries))

    async def _schedule_enrollment(self) -> None:
        """Enrollment reminders and expiries (see ``pusher.scheduler``)."""
        await self.scheduler.run(self._stopping)

    async def _deliver_webhooks(self) -> None:
        """Signed webhook deliveries with retries (see ``pusher.webhooks``)."""
        await self.webhooks.run(self._stopping)

    async def _observe_queue(self) -> None:
        """Export the job backlog (per shard, and in all) every few seconds: what the
        autoscaler scales the workers on."""
        while not self._stopping.is_set():
            replies = await self.backend.each_shard(
                lambda pipe, shard: pipe.xinfo_groups(keys.jobs(shard))
            )
            for shard, groups in replies.items():
                if isinstance(groups, ResponseError):  # the stream does not exist yet
                    groups = []
                if not isinstance(groups, Exception):  # else its primary is failing over
                    self._observe_shard(shard, groups)
            lag = sum(n for (_, state), n in self._backlog.items() if state == "lag")
            self.metrics.queue_lag.set(lag)
            self.metrics.queue_pending.set(sum(self._backlog.values()) - lag)
            await self._pause(self.observe_interval)

    def _observe_shard(self, shard: int, groups: list[dict[str, Any]]) -> None:
        lag = pending = 0
        for group in groups:
            if group.get("name") == JOBS_GROUP:
                lag, pending = int(group.get("lag") or 0), int(group.get("pending") or 0)
        for state, count in (("lag", lag), ("pending", pending)):
            self._backlog[(shard, state)] = count
            self.metrics.job_backlog.labels(str(shard), state).set(count)
