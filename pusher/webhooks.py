"""Webhook delivery (SPEC §9): every wanted event at least once, signed, retried for 24 h.

State lives in Redis (``approvals.store.webhooks``): a cursor into the tenant stream and a
queue of deliveries scored by their next attempt. A delivery is leased while it is being
sent, so a worker that dies hands it back and a restarted worker carries on.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import socket
from collections.abc import Callable, Sequence
from typing import Any, Final

import aiohttp
from redis.exceptions import RedisError

from approvals.secretbox import SecretBox, SecretBoxError
from approvals.store.clock import ServerClock
from approvals.store.events import EventStore
from approvals.store.webhooks import Delivery, DeliveryError, WebhookStore, secret_context
from approvals.webhook_targets import Network, TargetRefused, check_address
from pusher.metrics import WorkerMetrics
from pushgate.logs import get_logger

log = get_logger("pusher.webhooks")

SIGNATURE_HEADER: Final = "Pushgate-Signature"
EVENT_ID_HEADER: Final = "Pushgate-Event-Id"
RETRY_FOR_MS: Final = 24 * 3600 * 1000
BASE_DELAY_SECONDS: Final = 2.0
MAX_DELAY_SECONDS: Final = 3600.0
LEASE_MS: Final = 60_000
BATCH: Final = 64
CONCURRENCY: Final = 32


def signature(signing_secret: str, timestamp: int, body: bytes) -> str:
    """The ``Pushgate-Signature`` value: ``t=<ts>,v1=<hex HMAC-SHA256(secret, ts.body)>``."""
    mac = hmac.new(signing_secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def backoff_seconds(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Delay before the next try after ``attempt`` failed tries: exponential from 2 s up to
    an hour, with jitter over the upper half so a burst of failures spreads out."""
    ceiling = min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2.0 ** max(0, attempt - 1))
    return ceiling * (0.5 + rand() / 2)


class AddressRefused(OSError):
    """A resolved webhook address is not public (raised before connecting to it)."""


def guarded_socket_factory(allowed: Sequence[Network]) -> Callable[[Any], socket.socket]:
    """An aiohttp socket factory that refuses every non-public address right before the
    connection is made, after name resolution, so DNS answers cannot point webhooks inward."""

    def make_socket(addr_info: Any) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        try:
            check_address(str(sockaddr[0]), allowed)
        except TargetRefused as exc:
            raise AddressRefused(str(exc)) from None
        return socket.socket(family=family, type=type_, proto=proto)

    return make_socket


def failure_reason(exc: BaseException) -> str:
    """A short, operator-readable reason for a failed POST."""
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, AddressRefused):
        return str(exc.os_error)
    if isinstance(exc, AddressRefused):
        return str(exc)
    return type(exc).__name__


class WebhookSender:
    """Delivers queued events for every tenant with a webhook; one HTTP session per worker."""

    def __init__(
        self,
        store: WebhookStore,
        events: EventStore,
        box: SecretBox,
        *,
        clock: ServerClock,
        metrics: WorkerMetrics,
        interval: float,
        timeout: float = 10.0,
        allowed_networks: Sequence[Network] = (),
    ) -> None:
        self._store = store
        self._events = events
        self._box = box
        self._clock = clock
        self._metrics = metrics
        self._interval = interval
        self._timeout = timeout
        #: non-public networks webhooks may reach (``PUSHGATE_WEBHOOK_ALLOW_NETWORKS``)
        self.allowed_networks = tuple(allowed_networks)
        self._session: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(CONCURRENCY)

    async def start(self) -> None:
        """Open the HTTP session (inside the running loop)."""
        connector = aiohttp.TCPConnector(
            socket_factory=guarded_socket_factory(self.allowed_networks)
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            headers={"User-Agent": "pushgate-webhooks/1"},
        )

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def run(self, stopping: asyncio.Event) -> None:
        """Tick until ``stopping`` is set (the worker also cancels it on stop)."""
        while not stopping.is_set():
            await self.tick()
            await asyncio.sleep(self._interval)

    async def tick(self) -> None:
        """Queue new events and send the due deliveries of every tenant."""
        tenants = await self._store.tenants()
        results = await asyncio.gather(
            *(self._tenant_tick(t) for t in tenants), return_exceptions=True
        )
        for tenant, result in zip(tenants, results, strict=True):
            if isinstance(result, RedisError | OSError | asyncio.CancelledError):
                raise result  # the worker pauses the loop until Redis is back
            if isinstance(result, SecretBoxError):
                log.error("webhook_secret_unreadable", tenant=tenant, error=str(result))
            elif isinstance(result, BaseException):
                log.error("webhook_tenant_failed", tenant=tenant, error=repr(result))

    async def _tenant_tick(self, tenant: str) -> None:
        hook = await self._store.get(tenant)
        if hook is None:
            return
        await self._store.ingest(tenant)
        claimed = await self._store.claim(tenant, lease_ms=LEASE_MS, count=BATCH)
        if not claimed:
            return
        signing_secret = self._box.open(hook.sealed_secret, context=secret_context(tenant))
        await asyncio.gather(
            *(self._deliver(tenant, hook.url, signing_secret, item) for item in claimed)
        )

    async def _deliver(self, tenant: str, url: str, signing_secret: str, item: Delivery) -> None:
        event = await self._events.get(tenant, item.event_id)
        if event is None:  # trimmed from the capped stream before it could be sent
            await self._store.finish(tenant, item.event_id)
            self._metrics.webhook_deliveries.labels("dropped").inc()
            return
        body = json.dumps(event, separators=(",", ":")).encode()
        error = await self._post(url, signing_secret, item.event_id, body)
        now_ms = int(self._clock() * 1000)
        if error is None:
            await self._store.finish(tenant, item.event_id)
            self._metrics.webhook_deliveries.labels("delivered").inc()
        elif now_ms - item.since_ms >= RETRY_FOR_MS:
            await self._store.finish(tenant, item.event_id)
            self._metrics.webhook_deliveries.labels("gave_up").inc()
            await self._store.record_failure(tenant, DeliveryError(item.event_id, error, now_ms))
            log.warning("webhook_gave_up", tenant=tenant, event_id=item.event_id, error=error)
        else:
            await self._store.record_failure(tenant, DeliveryError(item.event_id, error, now_ms))
            delay_ms = int(backoff_seconds(item.attempt) * 1000)
            await self._store.retry_at(tenant, item.event_id, now_ms + delay_ms)
            self._metrics.webhook_deliveries.labels("failed").inc()
            log.info(
                "webhook_retry",
                tenant=tenant,
                event_id=item.event_id,
                attempt=item.attempt,
                delay_ms=delay_ms,
                error=error,
            )

    async def _post(self, url: str, signing_secret: str, event_id: str, body: bytes) -> str | None:
        """POST one event; None on a 2xx answer, else a short reason."""
        if self._session is None:
            raise RuntimeError("WebhookSender.start() was not called")
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(signing_secret, int(self._clock()), body),
            EVENT_ID_HEADER: event_id,
        }
        async with self._slots:
            try:
                async with self._session.post(
                    url, data=body, headers=headers, allow_redirects=False
                ) as resp:
                    return None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                return failure_reason(exc)
