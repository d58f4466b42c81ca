"""Redis killed (-9) and restarted on the same port while requests flow through a real
``pushgate serve``: 503s stop within a second of Redis accepting connections again, and no
retry applies a write twice."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from pushgate.embedded import EmbeddedRedis, free_port
from tests.integration.processes import (
    base_env,
    cli_json,
    enroll_devices,
    processes,
    start_gateway,
    start_worker,
)
from tests.portal import Portal

USERS = 60
LOOPS = 12
PACE_SECONDS = 0.05  # between one loop's requests: a steady flow, not a flood
BURST = 200  # concurrent requests that fill the gateway's connection pool
RECOVERY_BOUND_SECONDS = 1.0


@dataclass(frozen=True)
class Outcome:
    answered_at: float
    status: int
    deduplicated: bool


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A server this test kills and restarts (AOF on, so data survives)."""
    with EmbeddedRedis(appendonly=True) as server:
        yield server


async def _burst(portal: Portal, name: str, outcomes: list[Outcome]) -> None:
    """BURST requests at once (the gateway opens about as many Redis connections)."""
    loop = asyncio.get_running_loop()
    replies = await asyncio.gather(
        *(portal.create_challenge(f"user{i % USERS}", resource=f"{name}-{i}") for i in range(BURST))
    )
    now = loop.time()
    outcomes.extend(
        Outcome(now, r.status, isinstance(r.body, dict) and bool(r.body.get("deduplicated")))
        for r in replies
    )


async def _flow(
    portal: Portal, loop_index: int, stop: asyncio.Event, outcomes: list[Outcome]
) -> None:
    loop = asyncio.get_running_loop()
    count = 0
    while not stop.is_set():
        count += 1
        user = f"user{(loop_index + count) % USERS}"
        try:
            reply = await portal.create_challenge(user, resource=f"r{loop_index}-{count}")
            body = reply.body if isinstance(reply.body, dict) else {}
            outcome = Outcome(loop.time(), reply.status, bool(body.get("deduplicated")))
        except (aiohttp.ClientError, TimeoutError):
            outcome = Outcome(loop.time(), 0, False)
        outcomes.append(outcome)
        await asyncio.sleep(PACE_SECONDS)


async def test_no_503_a_second_after_redis_restarts_and_no_write_applied_twice(
    own_redis: EmbeddedRedis, tmp_path: Path
) -> None:
    """kill -9 of Redis under a steady flow after a burst filled the connection pool, restart on
    the same port: 503 while it is down, none answered later than 1 s after it accepts
    connections (a second burst then finds no dead pooled connection), no create applied
    twice (a duplicate would answer 200 deduplicated for a resource used once), and a portal
    websocket opened after the restart gets its result."""
    port = free_port()
    origin = f"http://localhost:{port}"
    env = base_env(own_redis.url, public_url=origin, log_level="warning")
    admin_key = cli_json(env, tmp_path, "tenant", "create", "acme")["admin_key"]
    outcomes: list[Outcome] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        with processes() as started:
            await start_gateway(started, session, env, tmp_path, port)
            await start_worker(started, session, env, tmp_path, "worker")
            portal = Portal(session, f"http://127.0.0.1:{port}", admin_key)
            policy = {"max_pushes_per_window": 100, "max_unanswered_pushes": 100}
            assert (await portal.call("PATCH", "/v1/policy", policy)).status == 200
            devices = await enroll_devices(portal, origin, [f"user{i}" for i in range(USERS)])

            loop = asyncio.get_running_loop()
            stop = asyncio.Event()
            flows = [asyncio.create_task(_flow(portal, i, stop, outcomes)) for i in range(LOOPS)]
            try:
                await _burst(portal, "warm", outcomes)
                await asyncio.sleep(0.5)
                own_redis.kill()
                killed_at = loop.time()
                await asyncio.sleep(1.5)
                await asyncio.to_thread(own_redis.start)
                up_at = loop.time()
                await asyncio.sleep(RECOVERY_BOUND_SECONDS + 0.2)
                await _burst(portal, "after", outcomes)
                await asyncio.sleep(1.0)
            finally:
                stop.set()
                await asyncio.gather(*flows)

            after = await portal.create_challenge("user0", resource="after")
            assert after.status == 201, after.body
            created = after.body
            waiter = asyncio.create_task(
                portal.wait_result(created["id"], watch_token=created["watch_token"])
            )
            await devices[0].respond(created["id"], "approve", number=created["number"])
            messages = await asyncio.wait_for(waiter, 10)
    assert messages[-1]["type"] == "result"
    assert messages[-1]["challenge"]["status"] == "approved"

    before = [o for o in outcomes if o.answered_at < killed_at]
    down = [o for o in outcomes if killed_at <= o.answered_at < up_at]
    late = [o for o in outcomes if o.answered_at > up_at + RECOVERY_BOUND_SECONDS]
    assert before and all(o.status == 201 for o in before)
    assert any(o.status == 503 for o in down)
    assert {o.status for o in outcomes} <= {201, 503}, sorted({o.status for o in outcomes})
    late_503 = [o for o in late if o.status == 503]
    timeline = [(round(o.answered_at - up_at, 2), o.status) for o in late_503]
    assert late_503 == [], f"{len(late_503)} of {len(late)} answered 503 late: {timeline}"
    assert late and all(o.status == 201 for o in late)
    assert [o for o in outcomes if o.deduplicated] == []
