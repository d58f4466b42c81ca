"""Graceful drain of real ``pushgate serve`` and ``pushgate worker`` processes on SIGTERM."""

from __future__ import annotations

import asyncio
import secrets
import ssl
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import WSCloseCode, WSMsgType
from aiohttp.test_utils import TestServer

from approvals.store import keys
from gateway.services import SERVICES
from pusher.worker import JOBS_GROUP
from pushgate.devicekit.authenticator import SoftAuthenticator
from pushgate.devicekit.client import DeviceClient
from pushgate.embedded import free_port
from tests.integration.conftest import Enroll
from tests.integration.processes import (
    base_env,
    cli_json,
    processes,
    start_gateway,
    start_standin,
    start_worker,
    status_of,
    wait_until,
)
from tests.portal import Portal

DRAIN_SECONDS = 8.0  # 2 s notice with the listener open, then up to 6 s for in-flight requests
LONG_POLL_SECONDS = 4
SHARDS = 4
TOPIC = "com.example.pushgate"


def portal_key(env: dict[str, str], cwd: Path) -> str:
    """Create a tenant and a portal key through the CLI, as an operator does."""
    tenant = cli_json(env, cwd, "tenant", "create", "acme")
    key = cli_json(env, cwd, "apikey", "create", tenant["tenant_id"], "--role", "portal")
    assert key["role"] == "portal"
    return str(key["api_key"])


async def enroll(
    session: aiohttp.ClientSession, portal: Portal, origin: str, **kw: str
) -> DeviceClient:
    """A software device enrolled for alice through ``portal``'s gateway."""
    device = DeviceClient(
        portal.base_url,
        session=session,
        authenticator=SoftAuthenticator.generate(origin=origin, rp_id="localhost"),
    )
    await device.enroll(await portal.enrollment_code("alice"), **kw)  # type: ignore[arg-type]
    return device


async def test_sigterm_drains_gateway_and_the_waiter_gets_its_result_from_another_replica(
    redis_url: str, tmp_path: Path
) -> None:
    """On SIGTERM, /readyz is 503 and new websockets are refused before exit, the waiter is closed
    with 1012, an in-flight long poll answers 200, the process exits 0 within the grace period,
    and the waiter reconnected to the other gateway receives the approved result."""
    port_a, port_b = free_port(), free_port()
    env = base_env(
        redis_url,
        drain_seconds=DRAIN_SECONDS,
        webauthn_origins=f"http://localhost:{port_a},http://localhost:{port_b}",
    )
    key = portal_key(env, tmp_path)
    async with aiohttp.ClientSession() as session:
        with processes() as started:
            gateway_a, _ = await asyncio.gather(
                *(
                    start_gateway(
                        started,
                        session,
                        {**env, "PUSHGATE_PUBLIC_URL": f"http://localhost:{port}"},
                        tmp_path,
                        port,
                        name,
                    )
                    for port, name in ((port_a, "gateway-a"), (port_b, "gateway-b"))
                )
            )
            a = Portal(session, f"http://127.0.0.1:{port_a}", key)
            b = Portal(session, f"http://127.0.0.1:{port_b}", key)
            device = await enroll(session, b, f"http://localhost:{port_b}")
            created = (await a.create_challenge("alice")).body
            challenge_id, token = created["id"], created["watch_token"]

            waiter = await session.ws_connect(a.ws_url(challenge_id, token))
            snapshot = await waiter.receive_json(timeout=5)
            assert snapshot["challenge"]["status"] == "pending"
            long_poll = asyncio.create_task(
                a.call("GET", f"/v1/challenges/{challenge_id}?wait={LONG_POLL_SECONDS}")
            )
            await asyncio.sleep(0.5)  # let the long poll reach gateway A
            assert not long_poll.done()

            loop = asyncio.get_running_loop()
            gateway_a.terminate()
            signalled_at = loop.time()

            async def not_ready() -> bool:
                return await status_of(session, f"{a.base_url}/readyz") == 503

            await wait_until(not_ready, "gateway A's /readyz to answer 503", 5)
            readiness = await a.call("GET", "/readyz", auth=False)
            assert readiness.status == 503
            assert readiness.body["checks"]["draining"] is True
            assert gateway_a.running

            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(a.ws_url(challenge_id, token))
            assert refused.value.status == 503
            assert refused.value.headers is not None
            assert refused.value.headers["Content-Type"].startswith("application/problem+json")
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(
                    f"{a.base_url}/v1/device/ws", headers=device.auth_headers()
                )
            assert refused.value.status == 503

            closing = await waiter.receive(timeout=DRAIN_SECONDS)
            assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
            assert waiter.close_code == WSCloseCode.SERVICE_RESTART
            await waiter.close()

            polled = await asyncio.wait_for(long_poll, DRAIN_SECONDS)
            assert polled.status == 200
            assert polled.body["id"] == challenge_id
            assert polled.body["status"] == "pending"

            left = signalled_at + DRAIN_SECONDS + 2 - loop.time()
            assert await gateway_a.wait(left) == 0, gateway_a.log_text()
            assert "gateway_stopped" in gateway_a.log_text()

            async with session.ws_connect(b.ws_url(challenge_id, token)) as rejoined:
                again = await rejoined.receive_json(timeout=5)
                assert again == {"type": "snapshot", "challenge": again["challenge"]}
                assert again["challenge"]["status"] == "pending"
                pending = [item["id"] for item in await device.list_challenges()]
                assert pending == [challenge_id]
                await device.respond(challenge_id, "approve", number=created["number"])
                result = await rejoined.receive_json(timeout=5)
                while result["type"] in ("push_sent", "delivered", "seen"):
                    result = await rejoined.receive_json(timeout=5)
                assert result["type"] == "result"
                assert result["challenge"]["status"] == "approved"
                assert (await rejoined.receive(timeout=5)).type in (
                    WSMsgType.CLOSE,
                    WSMsgType.CLOSED,
                )
                assert rejoined.close_code == WSCloseCode.OK


async def pending_jobs(redis: aioredis.Redis) -> dict[str, int]:
    """Unacknowledged push jobs by consumer, over every shard's job stream."""
    owners: dict[str, int] = {}
    for shard in range(SHARDS):
        summary = await redis.xpending(keys.jobs(shard), JOBS_GROUP)
        for consumer in summary["consumers"] or []:
            name = consumer["name"]
            owners[name] = owners.get(name, 0) + int(consumer["pending"])
    return owners


async def test_sigterm_worker_exits_cleanly_and_another_worker_delivers_its_unacked_job(
    redis_url: str, tmp_path: Path
) -> None:
    """A worker stopped by SIGTERM while an APNs send hangs exits 0 and leaves the job pending;
    a second worker reclaims it and the push reaches APNs."""
    port = free_port()
    push_token = secrets.token_hex(32)
    redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
    async with aiohttp.ClientSession() as session:
        with processes() as started:
            apns = await start_standin(started, tmp_path, "apns")
            tls = ssl.create_default_context(cafile=apns["ca_file"])
            env = base_env(
                redis_url,
                public_url=f"http://localhost:{port}",
                drain_seconds=1,
                worker_reclaim_idle_ms=300,
                apns_key_file=apns["key_file"],
                apns_key_id=apns["key_id"],
                apns_team_id=apns["team_id"],
                apns_topic=TOPIC,
                apns_endpoint=apns["url"],
                apns_ca_file=apns["ca_file"],
            )
            key = portal_key(env, tmp_path)
            await start_gateway(started, session, env, tmp_path, port)
            portal = Portal(session, f"http://127.0.0.1:{port}", key)
            await enroll(
                session,
                portal,
                f"http://localhost:{port}",
                platform="apns",
                push_token=push_token,
                app_bundle_id=TOPIC,
            )

            async def received() -> list[dict[str, object]]:
                url = f"{apns['url']}/_standin/received?token={push_token}"
                async with session.get(url, ssl=tls) as resp:
                    items: list[dict[str, object]] = (await resp.json())["received"]
                    return items

            async with session.post(
                f"{apns['url']}/_standin/faults", json={"next": [{"hang": True}]}, ssl=tls
            ) as resp:
                assert resp.status == 200

            first, _ = await start_worker(started, session, env, tmp_path, "worker-1")
            created = (await portal.create_challenge("alice")).body

            async def in_flight() -> bool:
                return len(await received()) == 1

            await wait_until(in_flight, "worker 1's push to hang at APNs", alive=first)
            first.terminate()
            assert await first.wait(10) == 0, first.log_text()
            assert '"worker_jobs_handed_back"' in first.log_text()
            assert "worker_stopped" in first.log_text()
            handed_back = await pending_jobs(redis)
            assert sum(handed_back.values()) == 1

            second, metrics_port = await start_worker(started, session, env, tmp_path, "worker-2")

            async def delivered() -> bool:
                return any(item["status"] == 200 for item in await received())

            await wait_until(delivered, "worker 2 to deliver the push", alive=second)

            async def acknowledged() -> bool:
                return sum((await pending_jobs(redis)).values()) == 0

            await wait_until(acknowledged, "the reclaimed job to be acknowledged", alive=second)
            view = (await portal.call("GET", f"/v1/challenges/{created['id']}")).body
            assert view["status"] == "pending"
            assert view["push"]["sent_at"] is not None
            async with session.get(f"http://127.0.0.1:{metrics_port}/metrics") as resp:
                assert 'pushgate_push_jobs_total{outcome="reclaimed"} 1.0' in await resp.text()
    await redis.aclose()


async def test_long_poll_that_would_outlast_the_drain_answers_its_snapshot_in_time(
    server: TestServer, portal: Portal, enroll: Enroll
) -> None:
    """A long poll waiting when the drain starts answers 200 pending before the drain deadline."""
    await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    long_poll = asyncio.create_task(portal.call("GET", f"/v1/challenges/{created['id']}?wait=55"))
    await asyncio.sleep(0.2)  # let the long poll subscribe
    assert not long_poll.done()
    server.app[SERVICES].begin_drain(asyncio.get_running_loop().time() + 1.0)
    polled = await asyncio.wait_for(long_poll, 5)
    assert polled.status == 200
    assert polled.body["status"] == "pending"
