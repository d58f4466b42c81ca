"""Script calls made together share one pipeline, and still answer one by one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from approvals.store.batching import ScriptBatcher

ECHO_OR_FAIL = """
if ARGV[1] == 'fail' then return redis.error_reply('asked to fail') end
redis.call('INCR', KEYS[1])
return ARGV[1]
"""


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    opened = aioredis.Redis.from_url(redis_url, decode_responses=True, client_name="batched")
    yield opened
    await opened.aclose()


async def test_calls_of_one_loop_turn_use_one_connection_and_get_their_own_replies(
    client: aioredis.Redis,
) -> None:
    """Fifty concurrent calls travel as one pipeline (one connection) and each caller gets its
    own reply or its own error."""
    script = client.register_script(ECHO_OR_FAIL)
    batcher = ScriptBatcher(client)
    words = [f"w{i}" if i % 10 else "fail" for i in range(50)]
    replies = await asyncio.gather(
        *(batcher(script, ["counter"], [word]) for word in words), return_exceptions=True
    )
    for word, reply in zip(words, replies, strict=True):
        if word == "fail":
            assert isinstance(reply, ResponseError)
        else:
            assert reply == word
    assert await client.get("counter") == "45"
    connections = [c for c in await client.client_list() if c["name"] == "batched"]
    assert len(connections) == 1


async def test_a_script_the_server_forgot_is_loaded_again(client: aioredis.Redis) -> None:
    """After SCRIPT FLUSH (as after a restart without persistence) batched calls still run."""
    script = client.register_script(ECHO_OR_FAIL)
    batcher = ScriptBatcher(client)
    assert await batcher(script, ["counter"], ["a"]) == "a"
    await client.script_flush()
    replies = await asyncio.gather(*(batcher(script, ["counter"], [str(i)]) for i in range(5)))
    assert replies == ["0", "1", "2", "3", "4"]


async def test_a_cancelled_caller_leaves_the_others_answered(client: aioredis.Redis) -> None:
    """A caller that gives up does not disturb the calls batched with it."""
    script = client.register_script(ECHO_OR_FAIL)
    batcher = ScriptBatcher(client)
    calls = [asyncio.ensure_future(batcher(script, ["counter"], [str(i)])) for i in range(3)]
    calls[1].cancel()
    done = await asyncio.gather(*calls, return_exceptions=True)
    assert done[0] == "0" and done[2] == "2"
    assert isinstance(done[1], asyncio.CancelledError)
