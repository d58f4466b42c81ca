"""The Redis connection and the scripts, shared by every store."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from approvals.ids import shard_for
from approvals.store import keys
from approvals.store.batching import ScriptBatcher
from approvals.store.scripts import Scripts


def decode_hash(raw: Any) -> dict[str, str]:
    """A Lua HGETALL reply (flat list) or a redis-py dict, as a str->str dict."""
    if isinstance(raw, dict):
        return {_s(k): _s(v) for k, v in raw.items()}
    items = list(raw or [])
    return {_s(items[i]): _s(items[i + 1]) for i in range(0, len(items) - 1, 2)}


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class FreshConnectionPool(aioredis.ConnectionPool):
    """A pool that never hands out a connection it has reason to believe is dead.

    A connection is reconnected before use when the server closed it (EOF or unread bytes on
    the socket), and so is every idle connection opened before the latest connection failure
    of any connection of the pool. After Redis restarts, the first command on each pooled
    connection therefore reconnects instead of failing on a dead socket; after a silent
    network loss, one failure (a timeout) retires the whole pool's connections of that era.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.failures = 0
        self._era: weakref.WeakKeyDictionary[AbstractConnection, int] = weakref.WeakKeyDictionary()

    async def ensure_connection(self, connection: AbstractConnection) -> None:
        """Connect ``connection``, reconnecting it first when it may be stale."""
        if connection.is_connected and await self._stale(connection):
            await connection.disconnect()
        fresh = not connection.is_connected
        await super().ensure_connection(connection)
        if fresh:
            self._era[connection] = self.failures

    async def _stale(self, connection: AbstractConnection) -> bool:
        if self._era.get(connection, -1) < self.failures:
            return True
        try:
            return bool(await connection.can_read())  # EOF, or bytes nobody asked for
        except (RedisConnectionError, OSError):
            return True

    async def release(self, connection: AbstractConnection) -> None:
        """Return ``connection``; one that comes back disconnected failed, which starts a
        new era: idle connections of the old one reconnect on their next use."""
        if not connection.is_connected and connection in self._era:
            self.failures += 1
            del self._era[connection]
        await super().release(connection)


@dataclass(frozen=True)
class Backend:
    """One Redis client (single node or Cluster), the registered scripts and the shard count."""

    redis: Any
    scripts: Scripts
    batched: ScriptBatcher  # script calls of one loop turn in one pipeline (hot paths)
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
    """A Backend for ``url``; connections open lazily and reconnect by themselves.

    Commands are never retried by the client: a command that failed may have run (its reply
    was lost), and running a script twice could count an attempt twice or create a second
    challenge. A failure surfaces at once (the gateway answers 503, the worker's loops back
    off), and the pool makes sure the next command gets a live connection.
    """
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": 2.0,
        "socket_timeout": 5.0,
        "health_check_interval": 15,
    }
    client: Any
    if cluster:
        client = RedisCluster.from_url(url, **options)
    else:
        pool = FreshConnectionPool.from_url(
            url,
            max_connections=512,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 0),
            **options,
        )
        client = aioredis.Redis.from_pool(pool)
    return Backend(
        redis=client,
        scripts=Scripts.register(client, cluster=cluster),
        batched=ScriptBatcher(client, enabled=not cluster),
        url=url,
        shards=shards,
        cluster=cluster,
        outbox_maxlen=events_maxlen,
    )
