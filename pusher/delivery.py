"""Deliver one job: every active device of the user, retried with backoff while pending."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Mapping

from approvals.challenge import effective_status
from approvals.store.challenges import ChallengeStore
from approvals.store.devices import DeviceStore
from pusher.metrics import WorkerMetrics
from pusher.providers.base import PushKind, PushMessage, PushProvider, SendOutcome, SendResult
from pusher.providers.inapp import InAppChannel
from pushgate.logs import get_logger

log = get_logger("pusher.delivery")

BACKOFF_BASE = 0.25
BACKOFF_CAP = 8.0


def backoff_delay(attempt: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter; a provider's Retry-After is a floor."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt))
    delay = random.uniform(ceiling / 2, ceiling)
    return max(delay, retry_after or 0.0)


def _redact(token: str) -> str:
    return f"…{token[-4:]}" if len(token) > 8 else "…"


class Delivery:
    """Sends one challenge (or its ending) to the user's devices."""

    def __init__(
        self,
        *,
        challenges: ChallengeStore,
        devices: DeviceStore,
        inapp: InAppChannel,
        providers: Mapping[str, PushProvider],
        metrics: WorkerMetrics,
        clock: Callable[[], float],
        device_channel: Callable[[str, str], str],
    ) -> None:
        self._challenges = challenges
        self._devices = devices
        self._inapp = inapp
        self._providers = providers
        self._metrics = metrics
        self._clock = clock
        self._device_channel = device_channel

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def deliver_challenge(self, challenge_id: str) -> str:
        """Send a new challenge everywhere; returns ``sent``, ``dropped`` or ``failed``."""
        record = await self._challenges.get(challenge_id)
        if record is None or effective_status(record, self._now_ms()) != "pending":
            return "dropped"
        devices = await self._devices.active_for_user(record["tenant"], record["user_id"])
        channel = self._device_channel(record["tenant"], record["user_id"])
        await self._inapp.announce(channel, record)
        in_app_only = any(d.get("platform") == "none" for d in devices)
        pushes = [d for d in devices if d.get("platform") in self._providers]
        unroutable = [d for d in devices if d.get("platform") not in ("none", *self._providers)]
        for device in unroutable:
            log.warning("no_provider", platform=device.get("platform"), device_id=device["id"])
        results = await asyncio.gather(
            *(self._send_until_done(record, d, "challenge") for d in pushes)
        )
        if in_app_only or any(r.outcome is SendOutcome.DELIVERED for r in results):
            await self._challenges.mark(
                challenge_id,
                field="sent_at",
                message="push_sent",
                event_type="challenge.push_sent",
                now_ms=self._now_ms(),
            )
            return "sent"
        errors = sorted({r.reason or r.outcome.value for r in results} or {"no_reachable_device"})
        await self._challenges.set_push_error(challenge_id, ",".join(errors))
        return "failed"

    async def deliver_ending(self, challenge_id: str, deciding_device: str) -> str:
        """Replace the prompt on the user's other devices (same collapse id), one attempt."""
        record = await self._challenges.get(challenge_id)
        if record is None:
            return "dropped"
        devices = await self._devices.active_for_user(record["tenant"], record["user_id"])
        targets = [
            d
            for d in devices
            if d["id"] != deciding_device and d.get("platform") in self._providers
        ]
        await asyncio.gather(*(self._send_once(record, d, "ended") for d in targets))
        return "sent" if targets else "dropped"

    def _message(
        self, record: dict[str, str], device: dict[str, str], kind: PushKind
    ) -> PushMessage:
        context = record.get("ctx") or "{}"
        location = str(json.loads(context).get("location") or "")
        platform = device["platform"]
        assert platform in ("apns", "fcm")
        return PushMessage(
            kind=kind,
            device_id=device["id"],
            platform=platform,  # type: ignore[arg-type]
            token=device.get("push_token", ""),
            topic=device.get("app_bundle_id", ""),
            challenge_id=record["id"],
            tenant=record["tenant"],
            app_name=record.get("app_name", ""),
            location=location,
            expires_at=int(record["expires_at"]) // 1000,
            now=int(self._clock()),
            status=record.get("status", "pending"),
        )

    async def _send_once(
        self, record: dict[str, str], device: dict[str, str], kind: PushKind
    ) -> SendResult:
        provider = self._providers[device["platform"]]
        message = self._message(record, device, kind)
        started = time.perf_counter()
        result = await provider.send(message)
        self._metrics.send_latency.labels(provider.name).observe(time.perf_counter() - started)
        self._metrics.sends.labels(provider.name, result.outcome.value).inc()
        log.info(
            "push_send",
            provider=provider.name,
            kind=kind,
            challenge_id=record["id"],
            device_id=device["id"],
            device_token=_redact(message.token),
            outcome=result.outcome.value,
            status=result.status,
            reason=result.reason,
        )
        if result.outcome is SendOutcome.INVALID_TOKEN:
            await self._devices.invalidate_token(
                device,
                token=message.token,
                reason=result.reason or "invalid",
                now_ms=self._now_ms(),
            )
        return result

    async def _send_until_done(
        self, record: dict[str, str], device: dict[str, str], kind: PushKind
    ) -> SendResult:
        attempt = 0
        while True:
            result = await self._send_once(record, device, kind)
            if result.outcome is not SendOutcome.RETRY:
                return result
            delay = backoff_delay(attempt, result.retry_after)
            attempt += 1
            if self._now_ms() + delay * 1000 >= int(record["expires_at"]):
                return result
            await asyncio.sleep(delay)
            fresh = await self._challenges.get(record["id"])
            if fresh is None or effective_status(fresh, self._now_ms()) != "pending":
                return result
            self._metrics.retries.labels(device["platform"]).inc()
