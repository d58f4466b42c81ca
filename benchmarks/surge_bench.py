"""Memory after a surge: portal websockets open and drop; how much RSS stays.

The gateway's RSS is read before the surge, at its peak with every socket open, once it
settles after they dropped, and ``surge_after_seconds`` later. The gateway trims the
allocator after many sockets closed (``gateway.memory``), so the last figure shows what
it keeps.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchmarks import procs, stack
from benchmarks.context import Context
from benchmarks.idle_bench import open_sockets, settled_rss
from benchmarks.sockets import Holders


async def run_surge(ctx: Context) -> dict[str, Any]:
    """Open ``surge_sockets`` portal websockets, drop them, follow the gateway's RSS."""
    gateway = ctx.gateways["info"]
    count, after = ctx.profile.surge_sockets, ctx.profile.surge_after_seconds
    rss: dict[str, int] = {"before": await settled_rss(gateway.pid)}
    await stack.reset_fatigue(ctx.redis_url, ctx.tenant, ctx.load_users)
    created = await stack.create_challenges(
        ctx.session, gateway, ctx.tenant, ctx.load_users, count, "surge"
    )
    urls = [
        f"{gateway.ws_url}/v1/challenges/{c['id']}/ws?watch_token={c['watch_token']}"
        for c in created
    ]
    holders = Holders(ctx.workdir, ctx.aux_cpus)
    try:
        report = await open_sockets(holders, urls, ctx, wait_frame=True)
        rss["peak"] = await settled_rss(gateway.pid)
    finally:
        await asyncio.to_thread(holders.close)
    dropped_at = time.monotonic()
    rss["dropped"] = await settled_rss(gateway.pid)
    await asyncio.sleep(max(0.0, after - (time.monotonic() - dropped_at)))
    rss["later"] = procs.rss_kib(gateway.pid)
    surge = rss["peak"] - rss["before"]
    kept = rss["later"] - rss["before"]
    ctx.say(
        f"  surge of {count} sockets: RSS {rss['before']} → {rss['peak']} KiB, "
        f"{rss['later']} KiB {after:.0f} s after they dropped"
    )
    return {
        "sockets": count,
        "seconds_to_open": report["seconds"],
        "after_seconds": after,
        "rss_kib": rss,
        "surge_kib": surge,
        "kept_kib": kept,
        "kept_share": round(kept / surge, 3) if surge > 0 else None,
    }
