"""P3, P4 and P5: idle portal websockets against a bare aiohttp websocket handler.

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

from benchmarks import http_bench, latency, procs, stack
from benchmarks.context import Context
from benchmarks.sockets import Holders


async def _settled_rss(pid: int, seconds: float = 2.0) -> int:
    """RSS in KiB once it stopped moving (two reads ``seconds`` apart within 1%)."""
    last = procs.rss_kib(pid)
    for _ in range(5):
        await asyncio.sleep(seconds)
        now = procs.rss_kib(pid)
        if abs(now - last) <= last * 0.01:
            return now
        last = now
    return last


async def _open(holders: Holders, urls: list[str], ctx: Context, *, wait_frame: bool) -> Any:
    per_process = math.ceil(len(urls) / max(1, ctx.profile.socket_processes))
    processes = max(1, math.ceil(len(urls) / per_process))
    report = await asyncio.to_thread(holders.open, urls, processes, wait_frame=wait_frame)
    if report["failed"]:
        raise RuntimeError(f"could not open every websocket: {report}")
    return report


async def _gateway_side(ctx: Context, out: dict[str, Any]) -> None:
    gateway = ctx.gateways["info"]
    samples = ctx.profile.latency_samples
    steps = ctx.profile.socket_steps
    out["approve_idle_0"] = await latency.approve_samples(ctx, gateway, samples)
    ctx.say(f"  approve -> result, 0 idle: {out['approve_idle_0']['approve_to_result_ms']}")
    out["creates_none_before"] = await http_bench.creates_per_second(ctx, "p5-none-a")
    rss0 = await _settled_rss(gateway.pid)
    out["gateway_rss_kib"] = {"0": rss0}
    holders = Holders(ctx.workdir, ctx.aux_cpus)
    opened = 0
    started = time.monotonic()
    try:
        for step in steps:
            await stack.reset_fatigue(ctx.redis_url, ctx.tenant, ctx.load_users)
            created = await stack.create_challenges(
                ctx.session, gateway, ctx.tenant, ctx.load_users, step - opened, f"idle-{step}"
            )
            urls = [
                f"{gateway.ws_url}/v1/challenges/{c['id']}/ws?watch_token={c['watch_token']}"
                for c in created
            ]
            report = await _open(holders, urls, ctx, wait_frame=True)
            opened = step
            rss = await _settled_rss(gateway.pid)
            out["gateway_rss_kib"][str(step)] = rss
            ctx.say(f"  gateway: {step} portal sockets open ({report['seconds']} s), RSS {rss} KiB")
        top = steps[-1]
        out[f"approve_idle_{top}"] = await latency.approve_samples(ctx, gateway, samples)
        ctx.say(
            f"  approve -> result, {top} idle: {out[f'approve_idle_{top}']['approve_to_result_ms']}"
        )
        out["creates_with_sockets"] = await http_bench.creates_per_second(ctx, "p5-with")
        still = await asyncio.to_thread(holders.open_count)
        out["sockets_still_open_after_p5"] = still
        out["seconds_sockets_were_open"] = round(time.monotonic() - started, 1)
        if still != top:
            raise RuntimeError(f"only {still} of {top} portal sockets stayed open")
    finally:
        await asyncio.to_thread(holders.close)
    out["creates_none_after"] = await http_bench.creates_per_second(ctx, "p5-none-b")


async def _baseline_side(ctx: Context, out: dict[str, Any]) -> None:
    server = ctx.baseline
    samples = ctx.profile.latency_samples
    steps = ctx.profile.socket_steps
    out["echo_idle_0"] = await latency.echo_samples(ctx, server, samples)
    rss0 = await _settled_rss(server.pid)
    out["baseline_rss_kib"] = {"0": rss0}
    holders = Holders(ctx.workdir, ctx.aux_cpus)
    opened = 0
    try:
        for step in steps:
            urls = [f"{server.ws_url}/ws/idle"] * (step - opened)
            await _open(holders, urls, ctx, wait_frame=False)
            opened = step
            out["baseline_rss_kib"][str(step)] = await _settled_rss(server.pid)
        out[f"echo_idle_{steps[-1]}"] = await latency.echo_samples(ctx, server, samples)
    finally:
        await asyncio.to_thread(holders.close)


def _summarise(ctx: Context, out: dict[str, Any]) -> dict[str, Any]:
    steps = ctx.profile.socket_steps
    per_socket: dict[str, Any] = {}
    for step in steps:
        gw = (out["gateway_rss_kib"][str(step)] - out["gateway_rss_kib"]["0"]) / step
        bare = (out["baseline_rss_kib"][str(step)] - out["baseline_rss_kib"]["0"]) / step
        per_socket[str(step)] = {
            "portal_kib_per_socket": round(gw, 2),
            "bare_kib_per_socket": round(bare, 2),
            "ratio": round(gw / bare, 3) if bare > 0 else None,
        }
    p3 = {}
    for idle in (0, steps[-1]):
        approve = out[f"approve_idle_{idle}"]["approve_to_result_ms"]["p99"]
        echo = out[f"echo_idle_{idle}"]["echo_ms"]["p99"]
        p3[str(idle)] = {
            "approve_p99_ms": approve,
            "echo_p99_ms": echo,
            "ratio": round(approve / echo, 2),
        }
    none = (out["creates_none_before"]["rate"] + out["creates_none_after"]["rate"]) / 2
    p5 = {
        "creates_none": round(none, 1),
        "creates_with_sockets": out["creates_with_sockets"]["rate"],
        "idle_sockets": steps[-1],
        "ratio": round(out["creates_with_sockets"]["rate"] / none, 3),
    }
    return {"p4": per_socket, "p3": p3, "p5": p5}


async def run_idle(ctx: Context) -> dict[str, Any]:
    """P3 (latency ratio with idle sockets), P4 (RSS per socket), P5 (creates with sockets)."""
    out: dict[str, Any] = {}
    await _gateway_side(ctx, out)
    await _baseline_side(ctx, out)
    return {**_summarise(ctx, out), "raw": out}
