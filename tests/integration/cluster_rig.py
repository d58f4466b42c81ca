"""Real processes on a Redis Cluster with replicas, for failover tests: two ``pushgate serve``
gateways, ``pushgate worker`` processes, the stand-ins, and portals and phones that behave
like real ones through a failover (they retry a 503 and reconnect a dropped websocket)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import RedisError

from approvals.ids import shard_of
from approvals.store import keys
from pushgate.devicekit.client import DeviceClient
from pushgate.devicekit.errors import DeviceApiError
from pushgate.embedded import EmbeddedRedis, free_port
from tests.cluster import primary_port_of_slot
from tests.integration.delivery_rig import Stack, stack
from tests.integration.processes import start_gateway, wait_until
from tests.portal import Portal

SHARDS = 8
RETRY_PAUSE = 0.2  # how long a portal or phone waits before retrying a 503 or a lost socket


@dataclass
class ClusterStack:
    """A delivery stack on a cluster, with a second gateway and the cluster's nodes."""

    s: Stack
    nodes: list[EmbeddedRedis]
    second: Portal
    answers: dict[str, list[int]] = field(default_factory=dict)

    @property
    def gateways(self) -> tuple[Portal, Portal]:
        return self.s.portal, self.second

    def slot_of(self, challenge_id: str) -> int:
        shard = shard_of(challenge_id, SHARDS)
        assert shard is not None
        return key_slot(keys.tag(shard).encode())

    def primary_of(self, challenge_id: str, *, ask: EmbeddedRedis | None = None) -> int:
        """The port of the primary that serves a challenge's shard (as a live node sees it)."""
        asked = ask or next(n for n in self.nodes if n.running)
        return primary_port_of_slot(asked.port, self.slot_of(challenge_id))

    def node(self, port: int) -> EmbeddedRedis:
        return next(n for n in self.nodes if n.port == port)

    async def jobs_pending(self) -> int:
        """Jobs not yet acknowledged (read or not), over every shard of the cluster."""
        client = RedisCluster.from_url(
            self.nodes_url(), decode_responses=True, require_full_coverage=False
        )
        try:
            total = 0
            for shard in range(SHARDS):
                if await client.exists(keys.jobs(shard)):
                    for group in await client.xinfo_groups(keys.jobs(shard)):
                        total += int(group["pending"]) + int(group.get("lag") or 0)
            return total
        finally:
            await client.aclose()

    def nodes_url(self) -> str:
        return next(n for n in self.nodes if n.running).url

    async def answer(
        self, phone: DeviceClient, challenge_id: str, decision: str, number: str | None
    ) -> bool:
        """A phone answering as a real app does: retry while the service answers 503 (or
        cannot be reached). True when the answer was taken: 200, or 409 after an attempt whose
        reply was lost (that attempt may have been the one that ended the challenge; the
        caller checks the final state). Every status is recorded."""
        statuses = self.answers.setdefault(challenge_id, [])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 40
        while loop.time() < deadline:
            try:
                await phone.respond(challenge_id, decision, number)  # type: ignore[arg-type]
            except DeviceApiError as exc:
                statuses.append(exc.status)
                if exc.status == 409:
                    return any(status in (0, 503) for status in statuses)
                if exc.status != 503:
                    return False
            except aiohttp.ClientError:
                statuses.append(0)
            else:
                statuses.append(200)
                return True
            await asyncio.sleep(RETRY_PAUSE)
        raise AssertionError(f"no answer to {challenge_id} was taken within 40 s: {statuses}")


async def create(portal: Portal, user: str, resource: str) -> dict[str, Any]:
    """Create a challenge as a portal does: retry 503s (a primary failing over)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 40
    while loop.time() < deadline:
        try:
            reply = await portal.create_challenge(user, resource=resource)
        except aiohttp.ClientError:
            await asyncio.sleep(RETRY_PAUSE)
            continue
        if reply.status == 201:
            return dict(reply.body)
        assert reply.status == 503, reply.body
        await asyncio.sleep(RETRY_PAUSE)
    raise AssertionError(f"no challenge for {user} was created within 40 s")


@dataclass
class Watch:
    """What one waiting portal saw: the result it was told (None if never) and how often it
    had to connect again."""

    result: dict[str, Any] | None = None
    reconnects: int = 0
    closes: list[int | None] = field(default_factory=list)


async def watch(portal: Portal, challenge_id: str, token: str, seen: Watch) -> None:
    """Wait for a challenge's result on its websocket like a portal: connect again (to the
    same load-balanced address) whenever the socket breaks or the gateway answers 503."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 75
    while loop.time() < deadline:
        try:
            async with portal.session.ws_connect(portal.ws_url(challenge_id, token)) as ws:
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        continue
                    data = json.loads(message.data)
                    if data["type"] == "result":
                        seen.result = data["challenge"]
                        return
                seen.closes.append(ws.close_code)
        except (aiohttp.ClientError, ConnectionError):
            seen.closes.append(None)
        seen.reconnects += 1
        await asyncio.sleep(RETRY_PAUSE)
    raise AssertionError(f"the portal waiting on {challenge_id} got no result within 75 s")


@asynccontextmanager
async def cluster_stack(
    nodes: list[EmbeddedRedis], cwd: Path, **settings: object
) -> AsyncIterator[ClusterStack]:
    """Stand-ins and two gateways on the cluster; the test starts the workers."""
    async with stack(
        nodes[0].url, cwd, redis_cluster="true", shards=SHARDS, **settings
    ) as delivery:
        port = free_port()
        await start_gateway(delivery.started, delivery.session, delivery.env, cwd, port, "gw2")
        second = Portal(delivery.session, f"http://127.0.0.1:{port}", delivery.portal.api_key)
        yield ClusterStack(delivery, nodes, second)


async def until_failed_over(rig: ClusterStack, victim: int, challenge_id: str) -> int:
    """Wait until a replica serves the slot the dead primary served; its port."""
    survivor = next(n for n in rig.nodes if n.running)

    async def moved() -> bool:
        try:
            return rig.primary_of(challenge_id, ask=survivor) != victim
        except (RedisError, OSError):
            return False

    await wait_until(moved, "a replica to take over the dead primary's slots", 30)
    return rig.primary_of(challenge_id, ask=survivor)
