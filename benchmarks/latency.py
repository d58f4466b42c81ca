"""Latency samplers: approve -> portal ``result`` frame, and a plain websocket echo.

Samples are sequential (one in flight), taken from the orchestrating process, which
shares no event loop with the servers.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from benchmarks import stack, stats
from benchmarks.context import Context
from pushgate.devicekit.answers import sign_response_body

ECHO_PAYLOAD = json.dumps({"type": "result", "pad": "x" * 480})


async def _result_frame(ws: aiohttp.ClientWebSocketResponse) -> float:
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.TEXT and json.loads(msg.data).get("type") == "result":
            return time.perf_counter()
    raise RuntimeError("portal websocket closed without a result")


async def approve_samples(ctx: Context, gateway: stack.Server, count: int) -> dict[str, Any]:
    """Create, open the portal websocket, then time a signed approve until ``result``.

    The device reads the challenge (its nonce) before the websocket opens, and the answer
    is signed before the clock starts: only the server's work is timed.
    """
    users = ctx.tenant.users["latency"]
    await stack.reset_fatigue(ctx.redis_url, ctx.tenant, users)
    session = ctx.session
    to_result: list[float] = []
    to_response: list[float] = []
    for i in range(count):
        device = ctx.tenant.devices[users[i % len(users)]]
        body = stack.create_body(device.user_id, f"lat-{gateway.port}-{i}-{time.time_ns()}")
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
        to_result.append((result_at - started) * 1000)
        to_response.append((answered - started) * 1000)
    return {
        "approve_to_result_ms": stats.latency_summary(to_result),
        "approve_http_response_ms": stats.latency_summary(to_response),
    }


async def echo_samples(ctx: Context, server: stack.Server, count: int) -> dict[str, Any]:
    """Round trips of a ~500-byte text frame on the baseline echo websocket."""
    samples: list[float] = []
    async with ctx.session.ws_connect(server.ws_url + "/ws/echo", heartbeat=None) as ws:
        for _ in range(20):  # warm-up
            await ws.send_str(ECHO_PAYLOAD)
            await ws.receive()
        for _ in range(count):
            started = time.perf_counter()
            await ws.send_str(ECHO_PAYLOAD)
            msg = await ws.receive()
            samples.append((time.perf_counter() - started) * 1000)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"echo websocket: {msg.type}")
    return {"echo_ms": stats.latency_summary(samples)}
