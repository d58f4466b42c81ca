"""Pub/sub fan-in: one Redis subscription connection per gateway, shared by every waiter.

Waiters subscribe first and read the state second, so no message is lost in between.
When the connection breaks, the hub reconnects, subscribes again and sends ``RESYNC`` to
every waiter, which then re-reads the state: every waiter ends with the true state. On a
Cluster, ``gateway.cluster_waiters`` runs one hub per primary and moves channels between
them when a slot changes hands (the same ``RESYNC`` follows the move).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from redis.crc import key_slot
from redis.exceptions import RedisError

from pushgate.logs import get_logger

RESYNC = "\x00resync"
#: always subscribed, so every hub holds a connection it can watch even with no waiters
IDLE_CHANNEL = "pg:idle"

log = get_logger("gateway.waiters")


class HubUnavailable(Exception):
    """The subscription could not be confirmed (Redis unreachable)."""


@contextlib.asynccontextmanager
async def joined(
    channels: dict[str, Channel],
    channel: str,
    *,
    attach: Callable[[str, Channel], Awaitable[object]],
    detach: Callable[[str], Awaitable[object]],
    within: float,
) -> AsyncIterator[Inbox]:
    """A waiter joins ``channel`` (subscribed through ``attach`` when it is the first) and gets
    an inbox once Redis confirmed the subscription (HubUnavailable after ``within`` seconds);
    the last waiter to leave ``detach``es it."""
    inbox = Inbox()
    entry = channels.get(channel)
    try:
        if entry is None:
            entry = channels[channel] = Channel()
            entry.inboxes.add(inbox)
            await attach(channel, entry)
        else:
            entry.inboxes.add(inbox)
        try:
            await asyncio.wait_for(entry.wait_ready(), within)
        except TimeoutError:
            raise HubUnavailable("subscription not confirmed") from None
        yield inbox
    finally:
        if entry is not None:
            entry.inboxes.discard(inbox)
            if not entry.inboxes and channels.get(channel) is entry:
                del channels[channel]
                await detach(channel)


class Inbox:
    """One waiter's messages: a lean single-consumer queue (an idle portal socket holds one,
    so it carries no Event or getter bookkeeping of its own)."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[str] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: str) -> None:
        """Queue ``item`` and wake the consumer."""
        if self._items is None:
            self._items = deque()
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> str:
        """The next message, waiting for one if needed."""
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()


class Channel:
    """The waiters of one channel, whether Redis confirmed the subscription, and whether they
    must re-read once it is confirmed again (after a reconnect or a move to another node)."""

    __slots__ = ("_ready_waiters", "inboxes", "ready", "resync")

    def __init__(self) -> None:
        self.inboxes: set[Inbox] = set()
        self.ready = False
        self.resync = False
        self._ready_waiters: list[asyncio.Future[None]] = []

    def lost(self) -> None:
        """The subscription is gone: once confirmed again, waiters that read must re-read."""
        if self.ready:
            self.resync = True
        self.ready = False

    def confirmed(self) -> None:
        """Redis confirmed the subscription: wake waiters; ``RESYNC`` them if they must re-read."""
        self.set_ready()
        if self.resync:
            self.resync = False
            for inbox in self.inboxes:
                inbox.put_nowait(RESYNC)

    def set_ready(self) -> None:
        self.ready = True
        waiters, self._ready_waiters = self._ready_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_ready(self) -> None:
        if not self.ready:
            waiter = asyncio.get_running_loop().create_future()
            self._ready_waiters.append(waiter)
            await waiter


class Hub:
    """Multiplexes many waiters over one pub/sub connection."""

    def __init__(
        self,
        redis: Any,
        *,
        sharded: bool = False,
        listeners: Mapping[str, Callable[[str], None]] | None = None,
        confirm_timeout: float = 3.0,
        on_trouble: Callable[[], None] | None = None,
    ) -> None:
        self._redis = redis
        self._sharded = sharded
        self._listeners = dict(listeners or {})
        self._confirm_timeout = confirm_timeout
        self._on_trouble = on_trouble or (lambda: None)
        self._channels: dict[str, Channel] = {}
        self._pubsub: Any = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.reconnects = 0

    async def start(self) -> None:
        """Start the reader task (connects in the background, outside any request's log
        context)."""
        self._task = asyncio.create_task(
            self._run(), name="pubsub-hub", context=contextvars.Context()
        )

    async def close(self) -> None:
        """Stop the reader and close the connection."""
        self._closing = True
        task = self._task
        if task is not None:
            # a cancel can be swallowed while the client is still connecting: repeat it
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.5)
            with contextlib.suppress(asyncio.CancelledError):
                task.result()
        await self._drop_connection()

    @property
    def connected(self) -> bool:
        """True while the subscription connection is up."""
        return self._connected.is_set()

    def wake_all(self) -> None:
        """Send ``RESYNC`` to every waiter, so each re-reads its state now."""
        for entry in self._channels.values():
            for inbox in entry.inboxes:
                inbox.put_nowait(RESYNC)

    def subscription(self, channel: str) -> contextlib.AbstractAsyncContextManager[Inbox]:
        """Subscribe to ``channel`` and yield an inbox of its messages once confirmed."""
        return joined(
            self._channels,
            channel,
            attach=self.adopt,
            detach=self.release,
            within=self._confirm_timeout,
        )

    async def adopt(self, channel: str, entry: Channel) -> None:
        """Carry ``channel``'s waiters on this connection (a new channel, or one moved here from
        another node's hub); they get ``RESYNC`` once it is confirmed if they had read."""
        entry.lost()
        self._channels[channel] = entry
        if self._connected.is_set():
            await self._send("subscribe", channel)

    async def release(self, channel: str) -> None:
        """Stop carrying ``channel`` (its last waiter left, or it moved to another node)."""
        self._channels.pop(channel, None)
        if self._connected.is_set():
            await self._send("unsubscribe", channel)

    def channels(self) -> list[str]:
        """The channels this hub carries."""
        return list(self._channels)

    async def set_listeners(self, listeners: Mapping[str, Callable[[str], None]]) -> None:
        """Carry these (not sharded) change-notice listeners from now on, and no others."""
        added = [name for name in listeners if name not in self._listeners]
        dropped = [name for name in self._listeners if name not in listeners]
        self._listeners = dict(listeners)
        if self._connected.is_set():
            with contextlib.suppress(RedisError, OSError):  # the reader notices a dead link
                if added:
                    await self._bounded(self._pubsub.subscribe(*added))
                if dropped:
                    await self._bounded(self._pubsub.unsubscribe(*dropped))

    async def _send(self, verb: str, *channels: str) -> None:
        command = ("s" + verb) if self._sharded else verb
        try:
            await self._bounded(getattr(self._pubsub, command)(*channels))
        except (RedisError, OSError) as exc:  # TimeoutError included: the reader notices too
            log.warning("pubsub_send_failed", verb=verb, error=str(exc))

    async def _bounded(self, call: Awaitable[object]) -> None:
        """Await one pub/sub command, giving up after the confirm timeout (a paused server)."""
        async with asyncio.timeout(self._confirm_timeout):
            await call

    def _subscribe_groups(self) -> list[list[str]]:
        """The channels to subscribe again after a reconnect, in commands Redis accepts: one
        per slot for sharded channels (SSUBSCRIBE takes channels of one slot only)."""
        if not self._sharded:
            return [list(self._channels)] if self._channels else []
        groups: dict[int, list[str]] = {}
        for channel in self._channels:
            groups.setdefault(key_slot(channel.encode()), []).append(channel)
        return list(groups.values())

    async def _drop_connection(self) -> None:
        self._connected.clear()
        for entry in self._channels.values():
            entry.lost()
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _run(self) -> None:
        delay = 0.05
        first = True
        while not self._closing:
            try:
                self._pubsub = self._redis.pubsub()
                await self._bounded(self._pubsub.subscribe(IDLE_CHANNEL, *self._listeners))
                for group in self._subscribe_groups():
                    verb = "ssubscribe" if self._sharded else "subscribe"
                    await self._bounded(getattr(self._pubsub, verb)(*group))
                self._connected.set()
                if not first:
                    self.reconnects += 1
                    log.info("pubsub_reconnected", channels=len(self._channels))
                first, delay = False, 0.05
                await self._read()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:  # TimeoutError is an OSError
                log.warning("pubsub_connection_lost", error=str(exc) or type(exc).__name__)
            await self._drop_connection()
            self._on_trouble()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _read(self) -> None:
        while not self._closing:
            message = await self._pubsub.get_message(timeout=5.0)
            if message is None:
                await self._bounded(self._pubsub.ping())
                continue
            kind = message["type"]
            channel = message.get("channel")
            entry = self._channels.get(channel) if channel is not None else None
            if kind in ("subscribe", "ssubscribe"):
                if entry is not None:
                    entry.confirmed()
            elif kind == "sunsubscribe" and entry is not None:
                # Not ours: the server dropped it because its slot moved to another node.
                entry.lost()
                self._on_trouble()
            elif kind in ("message", "smessage"):
                self._dispatch(channel, message["data"])

    def _dispatch(self, channel: str, data: str) -> None:
        listener = self._listeners.get(channel)
        if listener is not None:
            listener(data)
            return
        entry = self._channels.get(channel)
        if entry is not None:
            for inbox in entry.inboxes:
                inbox.put_nowait(data)
