"""APNs router: one long-lived aioapns client with token (.p8) auth per provider.

``endpoint`` (``https://host:port``) and ``ca_file`` point the client at another server,
such as the local stand-in; aioapns has no host argument, so a per-provider subclass of its
protocol carries ``APNS_SERVER`` / ``APNS_PORT``. The same subclass waits for the server's
first SETTINGS frame before opening a stream (APNs allows one stream until a request with
a valid token went through, and aioapns would otherwise open many at once), keeps
``Retry-After`` headers, which aioapns does not expose, and resets the stream of a request
its sender abandoned (a timeout), so APNs never accepts a prompt after the worker gave up.

Each :meth:`ApnsProvider.send` is exactly one attempt: it takes a connection from aioapns's
pool and sends on it, bypassing the pool's own loop, which retries connecting up to
``max_connection_attempts`` times a second apart without asking whether the prompt is still
wanted. The delivery loop owns every retry.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aioapns import APNs, NotificationRequest, PushType
from aioapns.common import NotificationResult
from aioapns.connection import (
    APNsDevelopmentClientProtocol,
    APNsProductionClientProtocol,
    APNsTLSClientProtocol,
)
from aioapns.exceptions import ConnectionClosed
from h2.errors import ErrorCodes
from h2.exceptions import H2Error
from h2.settings import ChangedSetting, SettingCodes

from pusher.payloads import apns_payload, retry_after_seconds
from pusher.providers.base import PushMessage, SendOutcome, SendResult
from pushgate.logs import get_logger

log = get_logger("pusher.providers.apns")

PRIORITY_IMMEDIATE = 10
CLOSE_TIMEOUT = 2.0  # seconds to wait for TLS shutdown before aborting connections
INVALID_TOKEN_REASONS = frozenset(
    {"BadDeviceToken", "Unregistered", "DeviceTokenNotForTopic", "ExpiredToken"}
)


class _ExpiresAt(int):
    """A ``time_to_live`` that makes aioapns send ``apns-expiration`` = ``expires_at`` exactly.

    aioapns computes the header as ``int(time.time()) + time_to_live``; as an int this
    value is the seconds left, and added to anything it yields the absolute expiry, so the
    header does not drift when a second ticks between building and sending.
    """

    absolute: int

    def __new__(cls, expires_at: int, now: int) -> _ExpiresAt:
        obj = super().__new__(cls, expires_at - now)
        obj.absolute = expires_at
        return obj

    def __add__(self, other: int) -> int:
        return self.absolute

    def __radd__(self, other: int) -> int:
        return self.absolute


def _protocol_class(
    sandbox: bool, server: str | None, port: int | None, retry_after: dict[str, str]
) -> type[APNsTLSClientProtocol]:
    base = APNsDevelopmentClientProtocol if sandbox else APNsProductionClientProtocol

    class Protocol(APNsProductionClientProtocol):
        APNS_SERVER = server or base.APNS_SERVER
        APNS_PORT = port or base.APNS_PORT

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.settings_seen = asyncio.Event()
            self.lost = False
            self.closed = asyncio.Event()

        async def send_notification(self, request: NotificationRequest) -> NotificationResult:
            await self.settings_seen.wait()
            if self.lost:
                raise ConnectionClosed("connection lost before the server's SETTINGS")
            try:
                result: NotificationResult = await super().send_notification(request)
            except asyncio.CancelledError:
                self._abandon(request.notification_id)
                raise
            return result

        def _abandon(self, notification_id: str) -> None:
            """Reset the stream of a request nobody waits for any more (RST_STREAM CANCEL)."""
            self.requests.pop(notification_id, None)
            self.request_statuses.pop(notification_id, None)
            for stream_id, owner in list(self.request_streams.items()):
                if owner != notification_id:
                    continue
                del self.request_streams[stream_id]
                if self.lost or self.transport is None or self.transport.is_closing():
                    return
                try:
                    self.conn.reset_stream(stream_id, ErrorCodes.CANCEL)
                    self.flush()
                except H2Error:
                    return  # the stream ended meanwhile: its END_STREAM released the channel
                self.free_channels.release()

        def on_remote_settings_changed(self, changed: dict[SettingCodes, ChangedSetting]) -> None:
            super().on_remote_settings_changed(changed)
            self.settings_seen.set()

        def on_response_received(self, headers: dict[bytes, bytes]) -> None:
            value = headers.get(b"retry-after")
            if value:
                retry_after[headers.get(b"apns-id", b"").decode()] = value.decode()
            super().on_response_received(headers)

        def connection_lost(self, exc: Exception | None) -> None:
            self.lost = True
            self.settings_seen.set()
            # Requests whose sender timed out hold cancelled futures; aioapns would fail
            # setting an exception on them and skip the rest of its cleanup.
            self.requests = {k: f for k, f in self.requests.items() if not f.done()}
            try:
                super().connection_lost(exc)
            finally:
                self.closed.set()

    return Protocol


class ApnsProvider:
    """Sends pushes to APNs over one aioapns client created in :meth:`start`."""

    name = "apns"

    def __init__(
        self,
        *,
        key: str,
        key_id: str,
        team_id: str,
        topic: str,
        sandbox: bool = False,
        endpoint: str | None = None,
        ca_file: str | Path | None = None,
        timeout: float = 10.0,
        max_connections: int = 10,
    ) -> None:
        self._key = key
        self._key_id = key_id
        self._team_id = team_id
        self._topic = topic
        self._sandbox = sandbox
        self._endpoint = endpoint
        self._ca_file = None if ca_file is None else str(ca_file)
        self._timeout = timeout
        self._max_connections = max_connections
        self._client: APNs | None = None
        self._retry_after: dict[str, str] = {}

    async def start(self) -> None:
        """Create the client inside the running loop (its pool binds to that loop)."""
        if self._client is not None:
            return
        context = ssl.create_default_context(cafile=self._ca_file)
        context.set_alpn_protocols(["h2"])
        server = port = None
        if self._endpoint:
            url = urlsplit(self._endpoint)
            server, port = url.hostname, url.port or 443
        client = APNs(
            key=self._key,
            key_id=self._key_id,
            team_id=self._team_id,
            topic=self._topic,
            use_sandbox=self._sandbox,
            ssl_context=context,
            max_connections=self._max_connections,
            max_connection_attempts=1,
        )
        client.pool.protocol_class = _protocol_class(self._sandbox, server, port, self._retry_after)
        self._client = client

    async def close(self) -> None:
        """Close every connection of the client and wait (briefly) until they are gone."""
        client, self._client = self._client, None
        if client is None:
            return
        connections = list(client.pool.connections)
        client.pool.close()
        waits = [c.closed.wait() for c in connections if hasattr(c, "closed")]
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await asyncio.gather(*waits)
        except TimeoutError:
            for connection in connections:
                if connection.transport is not None:
                    connection.transport.abort()

    async def send(self, message: PushMessage, limit: float | None = None) -> SendResult:
        """One attempt, bounded by the timeout; never raises for APNs errors."""
        if self._client is None:
            return SendResult(SendOutcome.FAILED, self.name, reason="provider not started")
        try:
            payload = apns_payload(message)
        except ValueError as exc:
            return SendResult(SendOutcome.FAILED, self.name, reason=str(exc))
        notification_id = str(uuid.uuid4())
        request = NotificationRequest(
            device_token=message.token,
            message=payload,
            notification_id=notification_id,
            time_to_live=_ExpiresAt(message.expires_at, int(time.time())),
            priority=PRIORITY_IMMEDIATE,
            collapse_key=message.challenge_id,
            push_type=PushType.ALERT,
            apns_topic=message.topic or self._topic,
        )
        bound = self._timeout if limit is None else min(self._timeout, limit)
        try:
            async with asyncio.timeout(bound):
                connection = await self._client.pool.acquire()
                result = await connection.send_notification(request)
        except TimeoutError:
            return SendResult(SendOutcome.RETRY, self.name, reason="timeout")
        except Exception as exc:
            # Connection refused / lost, TLS or HTTP/2 errors: all transient for a push.
            log.warning("apns_send_failed", error=repr(exc))
            return SendResult(SendOutcome.RETRY, self.name, reason=type(exc).__name__)
        finally:
            retry_after = self._retry_after.pop(notification_id, None)
        return self._result(result, retry_after)

    def _result(self, result: NotificationResult, retry_after: str | None) -> SendResult:
        status = int(result.status) if result.status.isdigit() else None
        reason = result.description
        if result.is_successful:
            return SendResult(
                SendOutcome.DELIVERED, self.name, status=status, provider_id=result.notification_id
            )
        if status == 410 or reason in INVALID_TOKEN_REASONS:
            outcome = SendOutcome.INVALID_TOKEN
        elif status == 429 or (status is not None and status >= 500):
            outcome = SendOutcome.RETRY
        else:
            outcome = SendOutcome.FAILED
            log.warning("apns_rejected", status=status, reason=reason)
        return SendResult(
            outcome,
            self.name,
            status=status,
            reason=reason,
            retry_after=retry_after_seconds(retry_after, time.time()),
            provider_id=result.notification_id,
        )
