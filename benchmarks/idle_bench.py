"""P3, P4, P5 and P7: idle portal websockets against a bare aiohttp websocket handler.

Gateway side: real ``/v1/challenges/{id}/ws`` connections (watch tokens) on pending
challenges of many users, each watching its own challenge. Baseline side: the bare
handler of ``benchmarks.baseline_server``. Sockets are opened from holder processes on
the helper CPU, so only the server's memory is measured.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from benchmarks import expiry_bench, http_bench, latency, procs, stack
from benchmarks.context import Context
from benchmarks.sockets import Holders
from gateway.memory import CHECK_SECONDS, QUIET_SECONDS


async def settled_rss(pid: int, seconds: float = 2.0) -> int:
    """RSS in KiB once it stopped moving (two reads ``seconds`` apart within 1%)."""
    last = procs.rss_kib(pid)
    for _ in range(5):
        await asyncio.sleep(seconds)
        now = procs.rss_kib(pid)
        if abs(now - last) <= last * 0.01:
            return now
        last = now
    return last


async def open_sockets(holders: Holders, urls: list[str], ctx: Context, *, wait_frame: bool) -> Any:
    per_process = math.ceil(len(urls) / max(1, ctx.profile.socket_processes))
    processes = max(1, math.ceil(len(urls) / per_process))
    report = await asyncio.to_thread(holders.open, urls, processes, wait_frame=wait_frame)
    if report["failed"]:
        raise RuntimeError(f"could not open every websocket: {report}")
    return report


async def _open_step(
    ctx: Context, holders: Holders, server: stack.Server, count: int, step: int
) -> dict[str, Any]:
    if server is ctx.baseline:
        urls = [f"{server.ws_url}/ws/idle"] * count
        return await open_sockets(holders, urls, ctx, wait_frame=False)
    await stack.reset_fatigue(ctx.redis_url, ctx.tenant, ctx.load_users)
    created = await stack.create_challenges(
        ctx.session, server, ctx.tenant, ctx.load_users, count, f"idle-{step}"
    )
    urls = [
        f"{server.ws_url}/v1/challenges/{c['id']}/ws?watch_token={c['watch_token']}"
        for c in created
    ]
    return await open_sockets(holders, urls, ctx, wait_frame=True)


async def _measure(ctx: Context, out: dict[str, Any]) -> None:
    gateway, baseline = ctx.gateways["info"], ctx.baseline
    samples, steps = ctx.profile.latency_samples, ctx.profile.socket_steps
    out["latency_idle_0"] = await latency.paired_samples(ctx, gateway, baseline, samples)
    ctx.say(f"  0 idle: approve {out['latency_idle_0']['approve_to_result_ms']}")
    ctx.say(f"          echo {out['latency_idle_0']['echo_ms']}")
    out["creates_none_before"] = await http_bench.creates_per_second(ctx, "p5-none-a")
    servers = {"gateway": gateway, "baseline": baseline}
    rss = {name: {"0": await settled_rss(s.pid)} for name, s in servers.items()}
    out["rss_kib"] = rss
    holders = {name: Holders(ctx.workdir, ctx.aux_cpus) for name in servers}
    opened = 0
    started = time.monotonic()
    try:
        for step in steps:
            for name, server in servers.items():
                report = await _open_step(ctx, holders[name], server, step - opened, step)
                rss[name][str(step)] = await settled_rss(server.pid)
                ctx.say(
                    f"  {name}: {step} idle sockets ({report['seconds']} s to open), "
                    f"RSS {rss[name][str(step)]} KiB"
                )
            opened = step
        top = steps[-1]
        out[f"latency_idle_{top}"] = await latency.paired_samples(ctx, gateway, baseline, samples)
        ctx.say(f"  {top} idle: approve {out[f'latency_idle_{top}']['approve_to_result_ms']}")
        ctx.say(f"          echo {out[f'latency_idle_{top}']['echo_ms']}")
        still = {name: await asyncio.to_thread(h.open_count) for name, h in holders.items()}
        # the baseline's sockets go before P5: their pings would take the server CPU too
        await asyncio.to_thread(holders.pop("baseline").close)
        out["creates_with_sockets"] = []
        for run in range(ctx.profile.p5_runs):
            rate = await http_bench.creates_per_second(ctx, f"p5-with-{run}")
            out["creates_with_sockets"].append(rate)
            ctx.say(f"  P5 run {run + 1} with {top} idle sockets: {rate['rate']:,.0f} creates/s")
        ctx.say(f"  P7: {ctx.profile.expiry_challenges} challenges expiring, {top} idle sockets")
        out["expiry"] = await expiry_bench.run_expiry(ctx)
        ctx.say(f"  P7: {out['expiry']['fraction']:.1%} told `expired` within TTL + 1 s")
        still["gateway_after_p5"] = await asyncio.to_thread(holders["gateway"].open_count)
        out["sockets_still_open"] = still
        out["seconds_portal_sockets_were_open"] = round(time.monotonic() - started, 1)
        if set(still.values()) != {top}:
            raise RuntimeError(f"idle sockets were closed under the benchmark: {still}")
    finally:
        for h in holders.values():
            await asyncio.to_thread(h.close)
    # the collection and trim that follow many closed sockets (gateway.memory: checked every
    # 5 s, after 2 s without a close) run before the run without sockets, not inside it
    await asyncio.sleep(CHECK_SECONDS + QUIET_SECONDS + 1)
    out["creates_none_after"] = await http_bench.creates_per_second(ctx, "p5-none-b")


def _summarise(ctx: Context, out: dict[str, Any]) -> dict[str, Any]:
    steps = ctx.profile.socket_steps
    rss = out["rss_kib"]
    per_socket: dict[str, Any] = {}
    for step in steps:
        gw = (rss["gateway"][str(step)] - rss["gateway"]["0"]) / step
        bare = (rss["baseline"][str(step)] - rss["baseline"]["0"]) / step
        per_socket[str(step)] = {
            "portal_kib_per_socket": round(gw, 2),
            "bare_kib_per_socket": round(bare, 2),
            "ratio": round(gw / bare, 3) if bare > 0 else None,
        }
    p3 = {}
    for idle in (0, steps[-1]):
        sample = out[f"latency_idle_{idle}"]
        approve = sample["approve_to_result_ms"]["p99"]
        echo = sample["echo_ms"]["p99"]
        p3[str(idle)] = {
            "approve_p99_ms": approve,
            "echo_p99_ms": echo,
            "ratio": round(approve / echo, 2),
        }
    none = (out["creates_none_before"]["rate"] + out["creates_none_after"]["rate"]) / 2
    with_sockets = [run["rate"] for run in out["creates_with_sockets"]]
    p5 = {
        "creates_none": round(none, 1),
        "creates_with_sockets": with_sockets,
        "idle_sockets": steps[-1],
        "ratios": [round(rate / none, 3) for rate in with_sockets],
    }
    return {"p4": per_socket, "p3": p3, "p5": p5, "p7": out["expiry"]}


async def run_idle(ctx: Context) -> dict[str, Any]:
    """P3 (latency ratio with idle sockets), P4 (RSS per socket), P5 (creates with sockets),
    P7 (expiries told on time with the sockets open)."""
    out: dict[str, Any] = {}
    await _measure(ctx, out)
    return {**_summarise(ctx, out), "raw": out}
