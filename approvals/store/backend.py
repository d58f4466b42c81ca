"""The Redis connection and the scripts, shared by every store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from approvals.ids import shard_for
from approvals.store import keys
from approvals.store.scripts import Scripts


def decode_hash(raw: Any) -> dict[str, str]:
    """A Lua HGETALL reply (flat list) or a redis-py dict, as a str->str dict."""
    if isinstance(raw, dict):
        return {_s(k): _s(v) for k, v in raw.items()}
    items = list(raw or [])
    return {_s(items[i]): _s(items[i + 1]) for i in range(0, len(items) - 1, 2)}


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class Backend:
    """One Redis client (single node or Cluster), the registered scripts and the shard count."""

    redis: Any
    scripts: Scripts
    url: str
    shards: int
    cluster: bool = False
    jobs_maxlen: int = 100_000
    outbox_maxlen: int = 100_000

    def user_keys(self, tenant: str, user_id: str) -> keys.UserKeys:
        """The keys of a (tenant, user) in its shard."""
        return keys.UserKeys(shard_for(tenant, user_id, self.shards), tenant, user_id)

    def node_client(self, host: str, port: int) -> Any:
        """A plain client for one Cluster node (its pub/sub connection), same credentials."""
        parts = urlsplit(self.url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
        return aioredis.Redis.from_url(
            urlunsplit(parts._replace(netloc=netloc)),
            decode_responses=True,
            socket_connect_timeout=2.0,
        )

    async def ping(self) -> bool:
        """True when Redis answers."""
        return bool(await self.redis.ping())

    async def close(self) -> None:
        """Close the connection pool."""
        await self.redis.aclose()


def connect(
    url: str, *, cluster: bool = False, shards: int = 16, events_maxlen: int = 100_000
) -> Backend:
    """A Backend for ``url``; connections open lazily and reconnect by themselves."""
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": 2.0,
        "socket_timeout": 5.0,
        "health_check_interval": 15,
    }
    client: Any
    if cluster:
        # A primary that is down (until its replica takes over) must not stop the client from
        # using the slots the others serve.
        client = RedisCluster.from_url(url, require_full_coverage=False, **options)
    else:
        client = aioredis.Redis.from_url(url, max_connections=512, socket_keepalive=True, **options)
    return Backend(
        redis=client,
        scripts=Scripts.register(client, cluster=cluster),
        url=url,
        shards=shards,
        cluster=cluster,
        outbox_maxlen=events_maxlen,
    )
