"""P7: challenges whose portal websocket is told ``expired`` within TTL + 1 s, under idle load.

Runs while the idle sockets of P3-P5 are open: the tenant's push TTL is set to its lowest
value, ``expiry_challenges`` challenges are created and one portal websocket is opened on
each (from this process, on the helper CPU); nobody answers them. Each socket's ``result``
frame is timed against the challenge's ``expires_at`` (the server's clock, which is this
host's clock). The policy is restored afterwards.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Any

import aiohttp

from benchmarks import stack, stats
from benchmarks.context import Context

#: the lowest push TTL a policy accepts (policies.policy.Policy.push_ttl_seconds)
TTL_SECONDS = 15
GRACE_SECONDS = 1.0


def _epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


async def _watch(
    session: aiohttp.ClientSession, url: str, gate: asyncio.Semaphore, opened: list[float]
) -> tuple[str, float]:
    """Open the portal websocket, then wait for its ``result``: (status, arrival epoch s)."""
    async with gate:
        ws = await session.ws_connect(url, heartbeat=None, autoping=True)
    try:
        opened.append(time.monotonic())
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            if frame.get("type") == "result":
                return str(frame["challenge"]["status"]), time.time()
        return f"closed {ws.close_code} {ws.exception() or ''}".strip(), time.time()
    finally:
        await ws.close()


async def run_expiry(ctx: Context) -> dict[str, Any]:
    """Create, watch and time the expiry of ``expiry_challenges`` challenges."""
    gateway, count = ctx.gateways["info"], ctx.profile.expiry_challenges
    await stack.reset_fatigue(ctx.redis_url, ctx.tenant, ctx.load_users)
    await stack.set_policy(
        ctx.session, gateway, ctx.tenant, {**stack.BENCH_POLICY, "push_ttl_seconds": TTL_SECONDS}
    )
    try:
        started = time.monotonic()
        created = await stack.create_challenges(
            ctx.session, gateway, ctx.tenant, ctx.load_users, count, "expiry"
        )
        create_seconds = time.monotonic() - started
        gate = asyncio.Semaphore(64)
        opened: list[float] = []
        watches = [
            asyncio.create_task(
                _watch(
                    ctx.session,
                    f"{gateway.ws_url}/v1/challenges/{c['id']}/ws?watch_token={c['watch_token']}",
                    gate,
                    opened,
                )
            )
            for c in created
        ]
        results = await asyncio.wait_for(asyncio.gather(*watches), TTL_SECONDS + 60)
        open_seconds = max(opened, default=started) - started
    finally:
        await stack.set_policy(ctx.session, gateway, ctx.tenant)
    lateness_ms: list[float] = []
    on_time = 0
    statuses: dict[str, int] = {}
    for challenge, (status, arrived) in zip(created, results, strict=True):
        statuses[status] = statuses.get(status, 0) + 1
        late = (arrived - _epoch(challenge["expires_at"])) * 1000
        lateness_ms.append(late)
        if status == "expired" and late <= GRACE_SECONDS * 1000:
            on_time += 1
    return {
        "challenges": count,
        "ttl_seconds": TTL_SECONDS,
        "grace_seconds": GRACE_SECONDS,
        "expired_within_grace": on_time,
        "fraction": round(on_time / count, 4),
        "statuses": statuses,
        "after_expiry_ms": stats.latency_summary(lateness_ms),
        "seconds_to_create": round(create_seconds, 2),
        "seconds_to_create_and_open": round(open_seconds, 2),
    }
