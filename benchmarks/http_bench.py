"""P1: challenge creates/s through ``POST /v1/challenges`` ÷ hello-world requests/s.

Both servers run in their own process on the same (pinned) CPU with the same runtime and
log settings; wrk drives both from the other CPU with the same connections and request
shape. Rounds interleave the targets (hello, create@info, create@warning), and each
ratio is taken within a round, so slow drift of a noisy machine cancels out. The server's
own CPU time per request is reported too: it does not depend on what else ran.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from benchmarks import loadgen, monitor, procs, stack, stats
from benchmarks.context import Context


async def _wrk(
    ctx: Context, server: stack.Server, path: str, tag: str, seconds: float, *, reset: bool = True
) -> Any:
    if reset:
        await stack.reset_fatigue(ctx.redis_url, ctx.tenant, ctx.load_users)
    cpu0 = procs.cpu_seconds(server.pid)
    result = await asyncio.to_thread(
        loadgen.run_wrk,
        server.url,
        path,
        ctx.tenant.portal_key,
        ctx.load_users,
        tag=tag,
        seconds=seconds,
        connections=ctx.profile.connections,
        threads=1,
        cpus=ctx.aux_cpus,
    )
    cpu = procs.cpu_seconds(server.pid) - cpu0
    if result.failed:
        raise RuntimeError(f"{tag}: wrk saw errors {result.errors}")
    return result, cpu / max(result.requests, 1) * 1e6


def _targets(ctx: Context) -> list[tuple[str, stack.Server, str]]:
    return [
        ("hello", ctx.baseline, "/hello"),
        ("hello_redis", ctx.baseline, "/hello-redis"),
        ("floor_create", ctx.baseline, "/v1/challenges"),
        ("create_info", ctx.gateways["info"], "/v1/challenges"),
        ("create_warning", ctx.gateways["warning"], "/v1/challenges"),
    ]


async def creates_per_second(ctx: Context, tag: str) -> dict[str, Any]:
    """One measured create run on the info gateway (used by P5)."""
    result, cpu_us = await _wrk(
        ctx, ctx.gateways["info"], "/v1/challenges", tag, ctx.profile.seconds
    )
    return {**result.to_json(), "server_cpu_us_per_request": round(cpu_us, 1)}


async def run_p1(ctx: Context) -> dict[str, Any]:
    """Interleaved rounds of hello and create runs; ratios per round."""
    profile = ctx.profile
    for name, server, path in _targets(ctx):
        await _wrk(ctx, server, path, f"warm-{name}", profile.warmup_seconds)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in _targets(ctx)}
    for round_no in range(profile.rounds):
        for name, server, path in _targets(ctx):
            result, cpu_us = await _wrk(ctx, server, path, f"p1-{round_no}-{name}", profile.seconds)
            runs[name].append({**result.to_json(), "server_cpu_us_per_request": round(cpu_us, 1)})
            ctx.say(
                f"  P1 round {round_no + 1} {name}: {result.rate:,.0f}/s, {cpu_us:.0f} µs CPU/req"
            )
    out: dict[str, Any] = {"runs": runs}
    for level in ("info", "warning", "hello_redis", "floor_create"):
        name = level if level in ("hello_redis", "floor_create") else f"create_{level}"
        pairs = list(zip(runs[name], runs["hello"], strict=True))
        out[f"ratio_{level}"] = stats.ratio_summary([c["rate"] / h["rate"] for c, h in pairs])
        out[f"cpu_ratio_{level}"] = stats.ratio_summary(
            [h["server_cpu_us_per_request"] / c["server_cpu_us_per_request"] for c, h in pairs]
        )
    # P1f: the create route's CPU per request over its floor's, within each round
    floor_pairs = list(zip(runs["create_info"], runs["floor_create"], strict=True))
    out["floor_cpu_ratio"] = stats.ratio_summary(
        [c["server_cpu_us_per_request"] / f["server_cpu_us_per_request"] for c, f in floor_pairs]
    )
    for name in runs:
        out[f"{name}_rate"] = round(stats.median([r["rate"] for r in runs[name]]), 1)
        out[f"{name}_cpu_us"] = round(
            stats.median([r["server_cpu_us_per_request"] for r in runs[name]]), 1
        )
    return out


async def _created_total(ctx: Context) -> float:
    async with ctx.session.get(ctx.gateways["info"].url + "/metrics") as resp:
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith('pushgate_challenges_total{outcome="created"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def round_trips(ctx: Context, seconds: float = 3.0) -> dict[str, Any]:
    """Commands the gateway sends per create after warm-up, counted with MONITOR.

    The denominator is the gateway's own count of created challenges (wrk stops with
    requests in flight); ``INFO commandstats`` cross-checks the EVALSHA count.
    """
    await stack.reset_fatigue(ctx.redis_url, ctx.tenant, ctx.load_users)
    client = aioredis.Redis.from_url(ctx.redis_url, decode_responses=True)
    evalsha_before = (await client.info("commandstats"))["cmdstat_evalsha"]["calls"]
    created_before = await _created_total(ctx)
    async with monitor.counting(ctx.redis_port) as counts:
        await _wrk(ctx, ctx.gateways["info"], "/v1/challenges", "rtt", seconds, reset=False)
        await asyncio.sleep(0.3)
    created = await _created_total(ctx) - created_before
    evalsha = (await client.info("commandstats"))["cmdstat_evalsha"]["calls"] - evalsha_before
    await client.aclose()
    for own in ("info", "monitor"):  # this function's own commands
        counts.pop(own, None)
    return {
        "creates": int(created),
        "per_create": monitor.per_unit(counts, int(created)),
        "commandstats_evalsha_per_create": round(evalsha / created, 4),
        "note": "MONITOR during a "
        f"{seconds:.0f} s wrk run; commands run inside Lua scripts are not round trips",
    }
