"""Reading every shard's stream through a consumer group, as soon as entries arrive."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError

from pushgate.logs import get_logger

log = get_logger("pusher.streams")

Entries = list[tuple[str, dict[str, str]]]
Handler = Callable[[str, Entries], Awaitable[None]]
BLOCK_MS = 1000
RETRY_FIRST = 0.02  # a shard reader that lost its primary tries again after this, doubling
RETRY_CAP = 0.25


class ShardStreams:
    """New entries of one stream per shard (``stream_of(shard)``) for one consumer."""

    def __init__(
        self,
        redis: Any,
        *,
        cluster: bool,
        shards: int,
        stream_of: Callable[[int], str],
        group: str,
        consumer: str,
        block_ms: int = BLOCK_MS,
    ) -> None:
        self._redis = redis
        self._block_ms = block_ms
        self._cluster = cluster
        self._shards = shards
        self._stream_of = stream_of
        self._group = group
        self._consumer = consumer

    async def consume(self, count: int, handle: Handler, stopping: asyncio.Event) -> None:
        """Hand every batch of new entries to ``handle`` until ``stopping`` is set.

        On a single Redis: one blocking XREADGROUP over every shard's stream. On a Cluster
        each stream lives in its own slot, so each shard has a reader of its own, blocking on
        that shard alone: an entry is handled the moment it arrives (not when the slowest
        shard's read times out), and a shard whose primary is failing over holds back no other.
        """
        if not self._cluster:
            streams = {self._stream_of(s): ">" for s in range(self._shards)}
            while not stopping.is_set():
                reply = await self._redis.xreadgroup(
                    self._group, self._consumer, streams, count=count, block=self._block_ms
                )
                for stream, entries in reply or []:
                    await handle(stream, entries)
            return
        await asyncio.gather(
            *(self._consume_shard(s, count, handle, stopping) for s in range(self._shards))
        )

    async def _consume_shard(
        self, shard: int, count: int, handle: Handler, stopping: asyncio.Event
    ) -> None:
        stream, delay = self._stream_of(shard), RETRY_FIRST
        while not stopping.is_set():
            try:
                await self._redis.initialize()  # the slot map, refreshed after a node failed
                reply = await self._redis.execute_command(
                    "XREADGROUP", "GROUP", self._group, self._consumer, "COUNT", count,
                    "BLOCK", self._block_ms, "STREAMS", stream, ">",
                    # straight to the owning primary: redis-py would otherwise first ask a
                    # server where the keys of an XREADGROUP are
                    target_nodes=self._redis.get_node_from_key(stream),
                )  # fmt: skip
            except (RedisError, OSError) as exc:
                if delay == RETRY_FIRST:
                    log.warning("shard_read_failed", stream=stream, error=repr(exc)[:200])
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_CAP)
                continue
            delay = RETRY_FIRST
            for _, entries in reply or []:
                await handle(stream, entries)
