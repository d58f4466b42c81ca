"""The Redis connection and the scripts, shared by every store."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError, ResponseError

from approvals.ids import shard_for
from approvals.store import keys
from approvals.store.batching import ScriptBatcher
from approvals.store.clock import ServerClock
from approvals.store.durability import Durability
from approvals.store.scripts import Scripts
from pushgate.settings import Settings, SettingsError

TIMEOUTS = {"socket_connect_timeout": 2.0, "socket_timeout": 5.0}
#: how long a command waits for a pooled connection when every one is in use
POOL_WAIT_SECONDS = 2.0


class _ClosedWriteAware:
    """A write to a connection torn down underneath it fails as the ConnectionError it is, so
    callers treat it as Redis being unreachable (503, retried) and not as a bug. It happens
    while a Cluster fails over: redis-py disconnects a node's connections, in-use ones too,
    when the slot map changes, and a connection still connecting then writes to a closed
    transport (uvloop: RuntimeError) or to no stream at all (AttributeError on None)."""

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        try:
            await super().send_packed_command(command, check_health)  # type: ignore[misc]
        except (RuntimeError, AttributeError) as exc:
            await self.disconnect(nowait=True)  # type: ignore[attr-defined]
            raise RedisConnectionError(f"connection closed while writing: {exc}") from exc


class Connection(_ClosedWriteAware, aioredis.Connection):
    """A plain TCP connection (see ``_ClosedWriteAware``)."""


class SSLConnection(_ClosedWriteAware, aioredis.SSLConnection):
    """A TLS connection (see ``_ClosedWriteAware``)."""


def decode_hash(raw: Any) -> dict[str, str]:
    """A Lua HGETALL reply (flat list) or a redis-py dict, as a str->str dict."""
    if isinstance(raw, dict):
        return {_s(k): _s(v) for k, v in raw.items()}
    items = iter([x if type(x) is str else _s(x) for x in raw or ()])
    return dict(zip(items, items, strict=False))


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class FreshConnectionPool(aioredis.ConnectionPool):
    """A pool that never hands out a connection it has reason to believe is dead.

    A connection is reconnected before use when the server closed it (EOF or unread bytes on
    the socket), and so is every idle connection opened before the latest connection failure
    of any connection of the pool. After Redis restarts, the first command on each pooled
    connection therefore reconnects instead of failing on a dead socket; after a silent
    network loss, one failure (a timeout) retires the whole pool's connections of that era.

    When every connection is in use, a command waits for one to come back (up to
    ``POOL_WAIT_SECONDS``, then MaxConnectionsError) instead of failing at once: a burst of
    more concurrent commands than connections, such as a thousand waiters whose challenges
    expire in the same second, queues instead of failing.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.failures = 0
        self._era: weakref.WeakKeyDictionary[AbstractConnection, int] = weakref.WeakKeyDictionary()
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        """A connected connection, waiting for a free one while all are in use."""
        deadline: float | None = None
        while True:
            try:
                return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call,no-any-return]
            except MaxConnectionsError:
                loop = asyncio.get_running_loop()
                deadline = deadline or loop.time() + POOL_WAIT_SECONDS
                if loop.time() >= deadline:
                    raise
                freed = loop.create_future()
                self._waiting.append(freed)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(freed), deadline - loop.time())

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
        while self._waiting:  # wake the longest waiting command, if one still waits
            freed = self._waiting.popleft()
            if not freed.done():
                freed.set_result(None)
                break


@dataclass(frozen=True)
class Backend:
    """One Redis client (single node or Cluster), the registered scripts and the shard count."""

    redis: Any
    scripts: Scripts
    batched: ScriptBatcher  # script calls of one loop turn in one pipeline (hot paths)
    url: str
    shards: int
    durability: Durability
    clock: ServerClock
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

    def cluster_map_client(self) -> Any:
        """A Cluster client of its own for reading the slot map (the pub/sub hub refreshes it
        often; doing that on the shared client would reset connections requests are using)."""
        return _cluster_client(self.url, decode_responses=True, **TIMEOUTS)

    @property
    def shift_ms(self) -> int:
        """The clock shift every script adds to the server's TIME (0 in production)."""
        return self.clock.shift_ms()

    async def each_shard(self, read: Callable[[Any, int], object]) -> dict[int, Any]:
        """One read per shard, pipelined (one round trip per Redis node, not per shard): the
        replies by shard. A shard whose command failed is left out (its primary is failing
        over) and its error is the reply; when every shard failed, the first error is raised."""
        pipe = self.redis.pipeline(transaction=False)
        for shard in range(self.shards):
            read(pipe, shard)
        replies = await pipe.execute(raise_on_error=False)
        failed = [r for r in replies if isinstance(r, Exception)]
        if failed and len(failed) == len(replies) and not isinstance(failed[0], ResponseError):
            raise failed[0]
        return dict(enumerate(replies))

    async def due_in_each_shard(
        self, index_of: Callable[[int], str], until_ms: int, limit: int
    ) -> dict[int, list[str]]:
        """Members scored up to ``until_ms`` in every shard's sorted-set index, by shard (one
        pipelined read; shards that could not be read are left out)."""
        replies = await self.each_shard(
            lambda pipe, shard: pipe.zrangebyscore(
                index_of(shard), "-inf", until_ms, start=0, num=limit
            )
        )
        return {
            shard: [str(member) for member in members]
            for shard, members in replies.items()
            if members and not isinstance(members, Exception)
        }

    async def ping(self) -> bool:
        """True when Redis answers."""
        return bool(await self.redis.ping())

    async def close(self) -> None:
        """Close the connection pool."""
        await self.redis.aclose()


def connect(
    url: str,
    *,
    cluster: bool = False,
    shards: int = 16,
    events_maxlen: int = 100_000,
    wait_replicas: int = 0,
    wait_timeout_ms: int = 500,
    clock: ServerClock | None = None,
) -> Backend:
    """A Backend for ``url``; connections open lazily and reconnect by themselves. Writes
    that must survive a failover wait for ``wait_replicas`` replicas (see ``durability``).

    Commands are never retried by the client: a command that failed may have run (its reply
    was lost), and running a script twice could count an attempt twice or create a second
    challenge. A failure surfaces at once (the gateway answers 503, the worker's loops back
    off), and the pool makes sure the next command gets a live connection.
    """
    options: dict[str, Any] = {"decode_responses": True, "health_check_interval": 15, **TIMEOUTS}
    client: Any
    if cluster:
        client = _cluster_client(url, **options)
    else:
        pool = FreshConnectionPool.from_url(
            url,
            max_connections=512,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 0),
            connection_class=SSLConnection if url.startswith("rediss://") else Connection,
            **options,
        )
        client = aioredis.Redis.from_pool(pool)
    return Backend(
        redis=client,
        scripts=Scripts.register(client, cluster=cluster),
        batched=ScriptBatcher(client, enabled=not cluster),
        url=url,
        shards=shards,
        durability=Durability(
            client, cluster=cluster, replicas=wait_replicas, timeout_ms=wait_timeout_ms
        ),
        clock=clock or ServerClock(),
        cluster=cluster,
        outbox_maxlen=events_maxlen,
    )


def open_backend(settings: Settings, clock: ServerClock | None = None) -> Backend:
    """The Backend the settings describe (``PUSHGATE_REDIS_*``, shards, event stream caps),
    deciding with ``clock`` (a new ServerClock if none); SettingsError without a Redis URL.
    The one place the gateway, the worker and the CLI open Redis."""
    if settings.redis_url is None:
        raise SettingsError("PUSHGATE_REDIS_URL is not set (redis://, rediss:// or unix://)")
    return connect(
        settings.redis_url,
        cluster=settings.redis_cluster,
        shards=settings.shards,
        events_maxlen=settings.events_maxlen,
        wait_replicas=settings.replica_acks,
        wait_timeout_ms=settings.redis_wait_timeout_ms,
        clock=clock,
    )


def _cluster_client(url: str, **options: Any) -> RedisCluster:
    """A Cluster client that keeps using the slots of healthy primaries while one is down
    (until its replica takes over), with closed-transport writes as ConnectionErrors."""
    # Workers block one XREADGROUP per shard on each node: room for them (per node).
    client = RedisCluster.from_url(url, require_full_coverage=False, max_connections=512, **options)
    # RedisCluster takes no connection class; the nodes it discovers are built from these
    ssl = client.connection_kwargs.get("connection_class") is aioredis.SSLConnection
    client.connection_kwargs["connection_class"] = SSLConnection if ssl else Connection
    return client
