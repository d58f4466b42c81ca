"""The Redis connections pushgate opens report a connection that died underneath them as the
outage it is (503, retried), on uvloop too."""

from __future__ import annotations

import asyncio

import pytest
import uvloop
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError

from approvals.store import backend as backend_module
from approvals.store.backend import Connection, connect
from pushgate.embedded import EmbeddedRedis


async def _write_after_close(port: int) -> None:
    connection = Connection(host="127.0.0.1", port=port)
    await connection.connect()
    assert connection._writer is not None
    connection._writer.transport.close()  # as when the peer failed over mid-connect
    await connection.send_command("PING")


def test_a_write_to_a_closed_transport_is_a_connection_error_on_uvloop(
    redis_server: EmbeddedRedis,
) -> None:
    """uvloop raises RuntimeError when writing to a closed transport; the connection turns it
    into redis's ConnectionError, which the gateway answers with 503 and the Cluster client
    retries on a fresh connection."""
    with (
        asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner,
        pytest.raises(RedisConnectionError, match="closed while writing"),
    ):
        runner.run(_write_after_close(redis_server.port))


async def test_both_clients_use_that_connection(redis_server: EmbeddedRedis) -> None:
    """The single-node client's pool and the Cluster client's node settings name it."""
    single = connect(redis_server.url)
    try:
        assert single.redis.connection_pool.connection_class is Connection
    finally:
        await single.close()
    cluster = connect(redis_server.url, cluster=True)
    try:
        assert cluster.redis.connection_kwargs["connection_class"] is Connection
    finally:
        await cluster.close()


async def test_more_concurrent_commands_than_connections_wait_for_one(
    redis_url: str,
) -> None:
    """A burst of more concurrent commands than the pool holds (a thousand waiters whose
    challenges expire together) waits for connections to come back instead of failing."""
    backend = connect(redis_url)
    pool = backend.redis.connection_pool
    pool.max_connections = 8
    try:
        replies = await asyncio.gather(
            *(backend.redis.incr("burst") for _ in range(200)), return_exceptions=True
        )
        assert [r for r in replies if isinstance(r, Exception)] == []
        assert sorted(replies) == list(range(1, 201))
        assert len(pool._in_use_connections) + len(pool._available_connections) <= 8
    finally:
        await backend.close()


async def test_a_command_gives_up_when_no_connection_comes_back_in_time(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait is bounded: with every connection held, a command fails (503) after it."""
    monkeypatch.setattr(backend_module, "POOL_WAIT_SECONDS", 0.2)
    backend = connect(redis_url)
    pool = backend.redis.connection_pool
    pool.max_connections = 1
    try:
        held = await pool.get_connection()
        with pytest.raises(MaxConnectionsError):
            await backend.redis.ping()
        await pool.release(held)
        assert await backend.redis.ping()
    finally:
        await backend.close()
