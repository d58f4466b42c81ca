"""The waiters' hub on a Redis Cluster: one subscription connection per primary, following the
cluster as primaries fail over.

A challenge's channel lives in its shard's slot (sharded pub/sub), so it is subscribed on the
primary that serves that slot. When a primary dies, is paused past the node timeout, or hands a
slot over, the hub learns the new owner (from redis-py's view of the cluster, refreshed on
trouble and every few seconds), moves each affected channel to the new owner's connection and
sends its waiters ``RESYNC`` once the new subscription is confirmed: they re-read the record
from the new primary, so every waiter ends with the state the cluster kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Callable, Mapping
from typing import Any

from redis.exceptions import RedisClusterException, RedisError

from gateway.waiters import Channel, Hub, Inbox, joined
from pushgate.logs import get_logger

log = get_logger("gateway.cluster_waiters")

#: how often the hub re-reads the cluster's slot map when all is well, and when it is not
REFRESH_SECONDS = 5.0
TROUBLE_REFRESH_SECONDS = 0.5


class ClusterHub:
    """One :class:`Hub` per primary; channels routed by slot, change notices (cluster-wide
    ``PUBLISH``) on one connected primary."""

    def __init__(
        self,
        cluster: Any,
        *,
        listeners: Mapping[str, Callable[[str], None]] | None = None,
        node_client: Callable[[str, int], Any],
        confirm_timeout: float = 3.0,
    ) -> None:
        self._cluster = cluster
        self._listeners = dict(listeners or {})
        self._node_client = node_client
        self._confirm_timeout = confirm_timeout
        self._hubs: dict[str, Hub] = {}
        self._clients: dict[str, Any] = {}
        self._entries: dict[str, Channel] = {}
        self._placed: dict[str, str] = {}  # channel -> name of the node whose hub carries it
        self._listening: str | None = None  # node whose hub carries the listeners
        self._trouble = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None
        self._moving = asyncio.Lock()
        self.moves = 0

    @property
    def reconnects(self) -> int:
        """Reconnections summed over every node's hub."""
        return sum(h.reconnects for h in self._hubs.values())

    @property
    def connected(self) -> bool:
        """True while at least one primary's subscription is up: the gateway can serve, and a
        waiter whose primary is down gets 503 until its replica takes over."""
        return any(h.connected for h in self._hubs.values())

    async def start(self) -> None:
        """Discover the primaries, start one hub on each, and watch the slot map."""
        await self._cluster.initialize()
        for node in self._cluster.get_primaries():
            await self._hub(node.name, node.host, node.port)
        await self._place_listeners()
        self._watcher = asyncio.create_task(
            self._watch(), name="cluster-hub-watch", context=contextvars.Context()
        )

    async def close(self) -> None:
        """Stop watching and stop every node's hub."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for hub in self._hubs.values():
            await hub.close()
        for client in self._clients.values():
            await client.aclose()
        await self._cluster.aclose()

    def wake_all(self) -> None:
        """Send ``RESYNC`` to every waiter on every node."""
        for hub in self._hubs.values():
            hub.wake_all()

    def subscription(self, channel: str) -> contextlib.AbstractAsyncContextManager[Inbox]:
        """Subscribe on the primary that owns ``channel``'s slot; the subscription follows
        the slot to another node if it moves."""
        return joined(
            self._entries,
            channel,
            attach=self._attach,
            detach=self._detach,
            within=self._confirm_timeout,
        )

    async def _attach(self, channel: str, entry: Channel) -> None:
        async with self._moving:
            await self._place(channel, entry)

    async def _detach(self, channel: str) -> None:
        hub = self._hubs.get(self._placed.pop(channel, ""))
        if hub is not None:
            await hub.release(channel)

    def _owner(self, channel: str) -> Any:
        slot = self._cluster.keyslot(channel)
        return self._cluster.nodes_manager.get_node_from_slot(slot)

    async def _hub(self, name: str, host: str, port: int) -> Hub:
        hub = self._hubs.get(name)
        if hub is None:
            client = self._clients[name] = self._node_client(host, port)
            hub = Hub(
                client,
                sharded=True,
                confirm_timeout=self._confirm_timeout,
                on_trouble=self._trouble.set,
            )
            self._hubs[name] = hub
            await hub.start()
        return hub

    async def _place(self, channel: str, entry: Channel) -> bool:
        """Carry ``channel`` on its slot owner's hub, moving it there if it lives elsewhere;
        True if it moved."""
        owner = self._owner(channel)
        current = self._placed.get(channel)
        if current == owner.name:
            return False
        if current is not None and current in self._hubs:
            await self._hubs[current].release(channel)
        self._placed[channel] = owner.name
        hub = await self._hub(owner.name, owner.host, owner.port)
        await hub.adopt(channel, entry)
        if not hub.connected:
            self._trouble.set()
        return current is not None

    async def _place_listeners(self) -> None:
        """Keep the change-notice listeners on a connected primary (any node hears PUBLISH)."""
        current = self._hubs.get(self._listening or "")
        if not self._listeners or (current is not None and current.connected):
            return
        connected = [name for name, hub in self._hubs.items() if hub.connected]
        choice = connected[0] if connected else (None if current else next(iter(self._hubs), None))
        if choice is None:
            return
        if current is not None:
            await current.set_listeners({})
        await self._hubs[choice].set_listeners(self._listeners)
        self._listening = choice

    async def _watch(self) -> None:
        """Re-read the slot map on trouble (a lost connection, a slot moved away) and every
        few seconds, and move channels whose slot changed owner."""
        while True:
            troubled = not all(h.connected for h in self._hubs.values()) or any(
                not e.ready for e in self._entries.values()
            )
            wait = TROUBLE_REFRESH_SECONDS if troubled else REFRESH_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._trouble.wait(), wait)
            self._trouble.clear()
            try:
                await self._refresh()
            except (RedisError, RedisClusterException, OSError) as exc:
                log.warning("cluster_map_refresh_failed", error=str(exc) or type(exc).__name__)

    async def _refresh(self) -> None:
        await self._cluster.nodes_manager.initialize()
        primaries = {node.name for node in self._cluster.get_primaries()}
        async with self._moving:
            moved = 0
            for channel, entry in list(self._entries.items()):
                if self._entries.get(channel) is entry:
                    moved += await self._place(channel, entry)
            if moved:
                self.moves += moved
                log.info("pubsub_channels_moved", channels=moved)
            for name in [n for n in self._hubs if n not in primaries]:
                hub = self._hubs[name]
                if not hub.channels():
                    del self._hubs[name]
                    await hub.close()
                    await self._clients.pop(name).aclose()
                    if self._listening == name:
                        self._listening = None
            await self._place_listeners()
