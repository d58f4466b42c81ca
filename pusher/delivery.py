"""Deliver one job: the prompt to each of the user's phones once, or the follow-up that
replaces it after the challenge ended.

Every attempt is gated in Redis right before it is made (``DeliveryStore``): a prompt only
while its challenge is pending with time left, a device only until one attempt for it was
accepted, a follow-up only after every prompt attempt to that device has finished. Each
outcome is recorded on the challenge as soon as the provider answered, and the job's last
outcome acknowledges it in the same script, so a retried or reclaimed job skips what was
already delivered. Retries are ours alone (the providers make one attempt per send), with
backoff and jitter, and every attempt is bounded by the time the prompt has left.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from approvals.store.clock import ServerClock
from approvals.store.deliveries import DeliveryStore, Job, Outcome, Phase, Plan, Route
from approvals.store.devices import DeviceStore
from pusher.backoff import backoff_delay, until_redis_answers
from pusher.metrics import WorkerMetrics
from pusher.providers.base import PushMessage, PushProvider, SendOutcome, SendResult
from pushgate.logs import get_logger

log = get_logger("pusher.delivery")

T = TypeVar("T")

MIN_PROMPT_MS = 1000  # a prompt with less time left than this is not worth sending
CLAIM_MARGIN_MS = 1000  # an attempt's claim outlives its time bound by this much
WAIT_CAP_S = 0.25  # how long to wait before looking again at another worker's attempt

_RECORDED = {
    SendOutcome.DELIVERED: Outcome.ACCEPTED,
    SendOutcome.RETRY: Outcome.RETRY,
    SendOutcome.INVALID_TOKEN: Outcome.DEAD_TOKEN,
    SendOutcome.FAILED: Outcome.FAILED,
}


@dataclass
class _Batch:
    """The routes of one begin step: who settles last acknowledges the job."""

    job: Job
    phase: Phase
    plan: Plan
    acknowledges: bool  # nothing else will be waited for after this batch
    remaining: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    errors: set[str] = field(default_factory=set)


class Delivery:
    """Runs prompt and follow-up jobs for one worker (``owner``)."""

    def __init__(
        self,
        *,
        store: DeliveryStore,
        devices: DeviceStore,
        providers: Mapping[str, PushProvider],
        metrics: WorkerMetrics,
        clock: ServerClock,
        owner: str,
        send_timeout: float,
        stopping: asyncio.Event,
    ) -> None:
        self._store = store
        self._devices = devices
        self._providers = providers
        self._platforms = sorted(providers)
        self._metrics = metrics
        self._clock = clock
        self._owner = owner
        self._send_timeout = send_timeout
        self._claim_ms = int(send_timeout * 1000) + CLAIM_MARGIN_MS
        self._stopping = stopping

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def _redis(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        return await until_redis_answers(call, self._stopping, what)

    async def run(self, job: Job) -> str:
        """Deliver one job; returns ``sent``, ``failed``, ``dropped`` or ``done``."""
        if not job.challenge_id or job.kind not in ("challenge", "ended"):
            await self._redis("ack", lambda: self._store.acknowledge(job))
            return "dropped"
        job = await self._redis("owner", lambda: self._store.owner_of(job))
        phase = Phase.FOLLOW_UP if job.kind == "ended" else Phase.PROMPT
        accepted = False
        while True:
            plan = await self._redis("begin", lambda: self._begin(job, phase))
            if plan.result != "send":
                return plan.result if not accepted else "sent"
            for platform in plan.unroutable:
                log.warning("no_provider", platform=platform, challenge_id=job.challenge_id)
            batch = _Batch(job, phase, plan, plan.wait_ms == 0, len(plan.routes))
            results = await asyncio.gather(*(self._deliver(batch, r) for r in plan.routes))
            accepted = accepted or any(r.outcome is SendOutcome.DELIVERED for r in results)
            if batch.acknowledges:
                return "sent" if accepted else "failed"
            # Another worker's attempt is in flight: look again once it must have ended.
            await asyncio.sleep(min(plan.wait_ms / 1000, WAIT_CAP_S))

    async def _begin(self, job: Job, phase: Phase) -> Plan:
        if phase is Phase.PROMPT:
            return await self._store.begin_prompt(
                job,
                owner=self._owner,
                attempt_ms=self._claim_ms,
                min_left_ms=MIN_PROMPT_MS,
                platforms=self._platforms,
            )
        return await self._store.begin_follow_up(
            job,
            owner=self._owner,
            attempt_ms=self._claim_ms,
            platforms=self._platforms,
        )

    async def _deliver(self, batch: _Batch, route: Route) -> SendResult:
        """Attempts for one device until accepted, refused for good, or no longer wanted."""
        attempt = 0
        while True:
            result = await self._attempt(batch, route)
            if result.outcome is not SendOutcome.RETRY:
                break
            delay = backoff_delay(attempt, result.retry_after)
            attempt += 1
            if self._now_ms() + delay * 1000 >= batch.plan.expires_at_ms:
                break  # the prompt would have expired before the next attempt
            await self._settle(batch, route, result, last=False)
            await asyncio.sleep(delay)
            verdict = await self._redis("gate", lambda: self._claim_retry(batch, route))
            if verdict != "go":
                self._metrics.attempts_stopped.labels(verdict).inc()
                return await self._finish(batch, route, result, recorded=True)
            self._metrics.retries.labels(route.platform).inc()
        if result.outcome is SendOutcome.INVALID_TOKEN:
            await self._redis("invalidate", lambda: self._invalidate(batch.job, route, result))
        return await self._finish(batch, route, result, recorded=False)

    async def _claim_retry(self, batch: _Batch, route: Route) -> str:
        return await self._store.claim_retry(
            batch.job,
            batch.phase,
            route.device_id,
            owner=self._owner,
            attempt_ms=self._claim_ms,
            min_left_ms=MIN_PROMPT_MS,
        )

    async def _attempt(self, batch: _Batch, route: Route) -> SendResult:
        """One send, bounded by the provider's timeout and, for a prompt, the time left."""
        provider = self._providers[route.platform]
        now = self._clock()
        limit = self._send_timeout
        if batch.phase is Phase.PROMPT:
            limit = min(limit, batch.plan.expires_at_ms / 1000 - now)
        message = self._message(batch, route, now)
        started = time.perf_counter()
        result = await provider.send(message, limit)
        self._metrics.send_latency.labels(provider.name).observe(time.perf_counter() - started)
        self._metrics.sends.labels(provider.name, result.outcome.value).inc()
        log.info(
            "push_send",
            provider=provider.name,
            kind=message.kind,
            challenge_id=batch.job.challenge_id,
            device_id=route.device_id,
            outcome=result.outcome.value,
            status=result.status,
            reason=result.reason,
        )
        return result

    def _message(self, batch: _Batch, route: Route, now: float) -> PushMessage:
        """The notification as of ``now``: FCM's ttl is the time left at this attempt."""
        plan = batch.plan
        location = plan.context.get("location") or ""
        follow_up = batch.phase is Phase.FOLLOW_UP
        return PushMessage(
            kind="ended" if follow_up else "challenge",
            device_id=route.device_id,
            platform=route.platform,  # type: ignore[arg-type]
            token=route.token,
            topic=route.topic,
            challenge_id=batch.job.challenge_id,
            tenant=batch.job.tenant,
            app_name=plan.app_name,
            location=str(location),
            expires_at=plan.expires_at_ms // 1000,
            now=int(now),
            status=plan.final_status if follow_up else "pending",
        )

    async def _finish(
        self, batch: _Batch, route: Route, result: SendResult, *, recorded: bool
    ) -> SendResult:
        """Record a device's final outcome; the batch's last one acknowledges the job."""
        async with batch.lock:
            batch.remaining -= 1
            if result.outcome is not SendOutcome.DELIVERED:
                batch.errors.add(result.reason or result.outcome.value)
            last = batch.acknowledges and batch.remaining == 0
            if last or not recorded:
                await self._settle(batch, route, result, last=last)
        return result

    async def _settle(self, batch: _Batch, route: Route, result: SendResult, *, last: bool) -> None:
        error = ",".join(sorted(batch.errors)) if last else ""
        await self._redis(
            "settle",
            lambda: self._store.settle(
                batch.job,
                batch.phase,
                route.device_id,
                _RECORDED[result.outcome],
                owner=self._owner,
                last=last,
                error=error,
            ),
        )

    async def _invalidate(self, job: Job, route: Route, result: SendResult) -> None:
        await self._devices.invalidate_token(
            tenant=job.tenant,
            user_id=job.user_id,
            device_id=route.device_id,
            token=route.token,
            reason=result.reason or "invalid",
        )
