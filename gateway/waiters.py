"""Pub/sub fan-in: one Redis subscription connection per gateway, shared by every waiter.

Waiters subscribe first and read the state second, so no message is lost in between.
When the connection breaks, the hub reconnects, subscribes again and sends ``RESYNC`` to
every waiter, which then re-reads the state: every waiter ends with the true state.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from redis.exceptions import RedisError

from pushgate.logs import get_logger

RESYNC = "\x00resync"
#: always subscribed, so every hub holds a connection it can watch even with no waiters
IDLE_CHANNEL = "pg:idle"

log = get_logger("gateway.waiters")


class HubUnavailable(Exception):
    """The subscription could not be confirmed (Redis unreachable)."""


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


class _Channel:
    """The waiters of one channel and whether Redis confirmed the subscription."""

    __slots__ = ("_ready_waiters", "inboxes", "ready")

    def __init__(self) -> None:
        self.inboxes: set[Inbox] = set()
        self.ready = False
        self._ready_waiters: list[asyncio.Future[None]] = []

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
    ) -> None:
        self._redis = redis
        self._sharded = sharded
        self._listeners = dict(listeners or {})
        self._confirm_timeout = confirm_timeout
        self._channels: dict[str, _Channel] = {}
        self._pubsub: Any = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.reconnects = 0

    async def start(self) -> None:
        """Start the reader task (connects in the background)."""
        self._task = asyncio.create_task(self._run(), name="pubsub-hub")

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

    @contextlib.asynccontextmanager
    async def subscription(self, channel: str) -> AsyncIterator[Inbox]:
        """Subscribe to ``channel`` and yield an inbox of its messages once confirmed."""
        inbox = Inbox()
        entry = self._channels.get(channel)
        if entry is None:
            entry = self._channels[channel] = _Channel()
            entry.inboxes.add(inbox)
            if self._connected.is_set():
                await self._send("subscribe", channel)
        else:
            entry.inboxes.add(inbox)
        try:
            try:
                await asyncio.wait_for(entry.wait_ready(), self._confirm_timeout)
            except TimeoutError:
                raise HubUnavailable("subscription not confirmed") from None
            yield inbox
        finally:
            entry.inboxes.discard(inbox)
            if not entry.inboxes and self._channels.get(channel) is entry:
                del self._channels[channel]
                if self._connected.is_set():
                    await self._send("unsubscribe", channel)

    async def _send(self, verb: str, *channels: str) -> None:
        command = ("s" + verb) if self._sharded else verb
        try:
            await getattr(self._pubsub, command)(*channels)
        except (RedisError, OSError) as exc:
            log.warning("pubsub_send_failed", verb=verb, error=str(exc))

    async def _drop_connection(self) -> None:
        self._connected.clear()
        for entry in self._channels.values():
            entry.ready = False
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
                await self._pubsub.subscribe(IDLE_CHANNEL, *self._listeners)
                if self._channels:
                    verb = "ssubscribe" if self._sharded else "subscribe"
                    await getattr(self._pubsub, verb)(*self._channels)
                self._connected.set()
                if not first:
                    self.reconnects += 1
                    log.info("pubsub_reconnected", channels=len(self._channels))
                first, delay = False, 0.05
                await self._read(resync=self.reconnects > 0)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("pubsub_connection_lost", error=str(exc))
            await self._drop_connection()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _read(self, *, resync: bool) -> None:
        pending_resync = set(self._channels) if resync else set()
        while not self._closing:
            message = await self._pubsub.get_message(timeout=5.0)
            if message is None:
                await self._pubsub.ping()
                continue
            kind = message["type"]
            channel = message.get("channel")
            if kind in ("subscribe", "ssubscribe"):
                entry = self._channels.get(channel)
                if entry is not None:
                    entry.set_ready()
                    if channel in pending_resync:
                        pending_resync.discard(channel)
                        for inbox in entry.inboxes:
                            inbox.put_nowait(RESYNC)
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


class ClusterHub:
    """The hub for Redis Cluster: one :class:`Hub` per primary, channels routed by slot
    (sharded pub/sub), change notices (cluster-wide PUBLISH) on the first primary."""

    def __init__(
        self,
        cluster: Any,
        *,
        listeners: Mapping[str, Callable[[str], None]] | None = None,
        node_client: Callable[[str, int], Any],
    ) -> None:
        self._cluster = cluster
        self._listeners = dict(listeners or {})
        self._node_client = node_client
        self._hubs: dict[str, Hub] = {}
        self._clients: list[Any] = []

    @property
    def reconnects(self) -> int:
        """Reconnections summed over every node's hub."""
        return sum(h.reconnects for h in self._hubs.values())

    async def start(self) -> None:
        """Discover the primaries and start one hub on each."""
        await self._cluster.initialize()
        for index, node in enumerate(self._cluster.get_primaries()):
            client = self._node_client(node.host, node.port)
            self._clients.append(client)
            hub = Hub(client, sharded=True, listeners=self._listeners if index == 0 else None)
            self._hubs[node.name] = hub
            await hub.start()

    async def close(self) -> None:
        """Stop every node's hub."""
        for hub in self._hubs.values():
            await hub.close()
        for client in self._clients:
            await client.aclose()

    @property
    def connected(self) -> bool:
        """True while every node's subscription connection is up."""
        return bool(self._hubs) and all(h.connected for h in self._hubs.values())

    def wake_all(self) -> None:
        """Send ``RESYNC`` to every waiter on every node."""
        for hub in self._hubs.values():
            hub.wake_all()

    def _hub_for(self, channel: str) -> Hub:
        slot = self._cluster.keyslot(channel)
        node = self._cluster.nodes_manager.get_node_from_slot(slot)
        hub = self._hubs.get(node.name)
        if hub is None:
            raise HubUnavailable(f"no subscription connection to {node.name}")
        return hub

    def subscription(self, channel: str) -> contextlib.AbstractAsyncContextManager[Inbox]:
        """Subscribe on the node that owns ``channel``'s slot."""
        return self._hub_for(channel).subscription(channel)
