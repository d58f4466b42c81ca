"""Latency samplers: approve -> portal ``result`` frame, and a plain websocket echo.

Samples are sequential (one in flight), taken from the orchestrating process, which
shares no event loop with the servers.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import aiohttp

from benchmarks import stack, stats
from benchmarks.context import Context
from pushgate.devicekit.answers import sign_response_body

ECHO_PAYLOAD = json.dumps({"type": "result", "pad": "x" * 480})
ANSWER_ROUTE = "/v1/device/challenges/{challenge_id}/response"
_DURATION = re.compile(
    r'^pushgate_http_request_duration_seconds_(sum|count)\{route="([^"]+)"\} ([0-9.e+-]+)$'
)


async def handler_seconds(
    session: aiohttp.ClientSession, server: stack.Server
) -> dict[str, list[float]]:
    """Per route: [seconds spent in handlers, requests], from the gateway's /metrics."""
    async with session.get(server.url + "/metrics") as resp:
        text = await resp.text()
    out: dict[str, list[float]] = {}
    for line in text.splitlines():
        match = _DURATION.match(line)
        if match:
            kind, route, value = match.groups()
            out.setdefault(route, [0.0, 0.0])[0 if kind == "sum" else 1] = float(value)
    return out


async def _result_frame(ws: aiohttp.ClientWebSocketResponse) -> float:
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data).get("type") == "result":
            return time.perf_counter()
    raise RuntimeError("portal websocket closed without a result")


async def _approve_once(
    ctx: Context, gateway: stack.Server, user_id: str, i: int
) -> tuple[float, float]:
    """One sample: create, read the nonce, open the portal websocket, time a signed approve.

    The device reads the challenge before the websocket opens and the answer is signed
    before the clock starts: only the server's work (and the loopback) is timed.
    """
    session = ctx.session
    device = ctx.tenant.devices[user_id]
    body = stack.create_body(user_id, f"lat-{gateway.port}-{i}-{time.time_ns()}")
    async with session.post(
        gateway.url + "/v1/challenges", json=body, headers=ctx.tenant.portal_headers
    ) as resp:
        created = await resp.json()
        if resp.status != 201:
            raise RuntimeError(f"create: {resp.status} {created}")
    cid = created["id"]
    nonce = (await device.client.get_challenge(cid))["nonce"]
    url = f"{gateway.ws_url}/v1/challenges/{cid}/ws?watch_token={created['watch_token']}"
    async with session.ws_connect(url, heartbeat=None) as ws:
        snapshot = await ws.receive_json()
        assert snapshot["type"] == "snapshot", snapshot
        assert device.client.authenticator is not None
        answer = json.dumps(
            sign_response_body(device.client.authenticator, nonce, "approve", created["number"])
        )
        headers = {**device.client.auth_headers(), "Content-Type": "application/json"}
        waiter = asyncio.create_task(_result_frame(ws))
        started = time.perf_counter()
        async with session.post(
            f"{gateway.url}/v1/device/challenges/{cid}/response", data=answer, headers=headers
        ) as resp:
            view = await resp.json()
            answered = time.perf_counter()
            if resp.status != 200 or view.get("status") != "approved":
                raise RuntimeError(f"answer: {resp.status} {view}")
        result_at = await asyncio.wait_for(waiter, 10)
    return (result_at - started) * 1000, (answered - started) * 1000


async def _echo_once(ws: aiohttp.ClientWebSocketResponse) -> float:
    started = time.perf_counter()
    await ws.send_str(ECHO_PAYLOAD)
    msg = await ws.receive()
    if msg.type != aiohttp.WSMsgType.TEXT:
        raise RuntimeError(f"echo websocket: {msg.type}")
    return (time.perf_counter() - started) * 1000


async def _hello_redis_once(session: aiohttp.ClientSession, baseline: stack.Server) -> float:
    """One ``POST /hello-redis`` (an HTTP request with one Redis round trip behind it)."""
    started = time.perf_counter()
    async with session.post(baseline.url + "/hello-redis", data=b"{}") as resp:
        await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"/hello-redis: {resp.status}")
    return (time.perf_counter() - started) * 1000


async def paired_samples(
    ctx: Context, gateway: stack.Server, baseline: stack.Server, count: int
) -> dict[str, Any]:
    """Approve -> ``result`` samples interleaved one-for-one with echo round trips (and, as
    a floor for the device's request, an HTTP request with one Redis round trip), so a
    noisy moment on the machine hits every distribution alike."""
    users = ctx.tenant.users["latency"]
    await stack.reset_fatigue(ctx.redis_url, ctx.tenant, users)
    to_result: list[float] = []
    to_response: list[float] = []
    echoes: list[float] = []
    hello_redis: list[float] = []
    before = await handler_seconds(ctx.session, gateway)
    async with ctx.session.ws_connect(baseline.ws_url + "/ws/echo", heartbeat=None) as ws:
        for _ in range(20):  # warm-up
            await _echo_once(ws)
        for i in range(count):
            result_ms, response_ms = await _approve_once(ctx, gateway, users[i % len(users)], i)
            to_result.append(result_ms)
            to_response.append(response_ms)
            await asyncio.sleep(0.01)  # let the gateway finish closing before the echo
            echoes.append(await _echo_once(ws))
            hello_redis.append(await _hello_redis_once(ctx.session, baseline))
    after = await handler_seconds(ctx.session, gateway)
    spent = after[ANSWER_ROUTE][0] - before.get(ANSWER_ROUTE, [0.0, 0.0])[0]
    answered = after[ANSWER_ROUTE][1] - before.get(ANSWER_ROUTE, [0.0, 0.0])[1]
    return {
        "approve_to_result_ms": stats.latency_summary(to_result),
        "approve_http_response_ms": stats.latency_summary(to_response),
        "answer_handler_mean_ms": round(spent / max(answered, 1) * 1000, 3),
        "echo_ms": stats.latency_summary(echoes),
        "hello_redis_ms": stats.latency_summary(hello_redis),
    }
