"""Workers read each shard's stream on a Cluster with a reader of its own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis

from approvals.store import keys
from approvals.store.backend import connect
from pusher.streams import ShardStreams
from pushgate.embedded import EmbeddedRedis
from tests.cluster import embedded_cluster

SHARDS = 8


@pytest.fixture(scope="module")
def nodes() -> Iterator[list[EmbeddedRedis]]:
    with embedded_cluster() as started:
        yield started


def blocked_readers(nodes: list[EmbeddedRedis]) -> int:
    """Clients blocked in an XREADGROUP, over every node (CLIENT LIST)."""
    count = 0
    for node in nodes:
        client = redis.Redis(port=node.port, decode_responses=True, socket_timeout=5)
        try:
            for entry in client.client_list():
                count += entry.get("cmd") == "xreadgroup" and "b" in entry.get("flags", "")
        finally:
            client.close()
    return count


async def test_an_entry_is_handled_while_the_other_shards_reads_still_block(
    nodes: list[EmbeddedRedis],
) -> None:
    """With every shard's reader blocked, an entry added to one shard is handled at once: the
    other seven readers are still blocked when it is (no read waits for the slowest shard)."""
    backend = connect(nodes[0].url, cluster=True, shards=SHARDS)
    streams = [f"{keys.tag(shard)}:test-stream" for shard in range(SHARDS)]
    for stream in streams:
        await backend.redis.xgroup_create(stream, "g", id="$", mkstream=True)
    reader = ShardStreams(
        backend.redis,
        cluster=True,
        shards=SHARDS,
        stream_of=lambda shard: streams[shard],
        group="g",
        consumer="c",
        block_ms=4000,
    )
    handled: list[tuple[str, int]] = []

    async def handle(stream: str, entries: list[tuple[str, dict[str, str]]]) -> None:
        handled.append((stream, await asyncio.to_thread(blocked_readers, nodes)))

    stopping = asyncio.Event()
    consuming = asyncio.create_task(reader.consume(10, handle, stopping))
    try:
        for _ in range(200):  # every shard's reader blocks (at most 10 s)
            if await asyncio.to_thread(blocked_readers, nodes) == SHARDS:
                break
            await asyncio.sleep(0.05)
        await backend.redis.xadd(streams[3], {"n": "1"})
        for _ in range(100):
            if handled:
                break
            await asyncio.sleep(0.05)
        assert handled == [(streams[3], SHARDS - 1)]
    finally:
        stopping.set()
        consuming.cancel()
        await asyncio.gather(consuming, return_exceptions=True)
        await backend.close()
