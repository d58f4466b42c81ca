"""P1: challenge creates/s through ``POST /v1/challenges`` ÷ hello-world requests/s.

Both servers run in their own process on the same (pinned) CPU with the same runtime and
log settings; wrk drives both from the other CPU with the same connections and request
shape. Rounds interleave the targets (hello, create@info, create@warning), and each
ratio is taken within a round, so slow drift of a noisy machine cancels out. The server's
own CPU time per request is reported too: it does not depend on what else ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import redis.asyncio as aioredis

from benchmarks import loadgen, procs, stack, stats
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
    for level in ("info", "warning"):
        pairs = list(zip(runs[f"create_{level}"], runs["hello"], strict=True))
        out[f"ratio_{level}"] = stats.ratio_summary([c["rate"] / h["rate"] for c, h in pairs])
        out[f"cpu_ratio_{level}"] = stats.ratio_summary(
            [h["server_cpu_us_per_request"] / c["server_cpu_us_per_request"] for c, h in pairs]
        )
    for name in runs:
        out[f"{name}_rate"] = round(stats.median([r["rate"] for r in runs[name]]), 1)
        out[f"{name}_cpu_us"] = round(
            stats.median([r["server_cpu_us_per_request"] for r in runs[name]]), 1
        )
    return out


_MONITOR_LINE = re.compile(rb'^\+[\d.]+ \[\d+ ([^\]]+)\] "([^"]+)"')


async def round_trips(ctx: Context, seconds: float = 3.0) -> dict[str, Any]:
    """Commands the gateway sends per create after warm-up, counted with MONITOR.

    MONITOR shows commands run by scripts with the source ``lua``; only the others are
    round trips. ``INFO commandstats`` cross-checks the EVALSHA count.
    """
    counts: dict[str, int] = {}
    reader, writer = await asyncio.open_connection("127.0.0.1", ctx.redis_port)
    writer.write(b"MONITOR\r\n")
    await writer.drain()
    assert (await reader.readline()).startswith(b"+OK")

    async def consume() -> None:
        while line := await reader.readline():
            match = _MONITOR_LINE.match(line)
            if match and match.group(1) != b"lua":
                name = match.group(2).decode().lower()
                counts[name] = counts.get(name, 0) + 1

    await stack.reset_fatigue(ctx.redis_url, ctx.tenant, ctx.load_users)
    client = aioredis.Redis.from_url(ctx.redis_url, decode_responses=True)
    stats_before = await client.info("commandstats")
    task = asyncio.create_task(consume())
    result, _ = await _wrk(ctx, ctx.gateways["info"], "/v1/challenges", "rtt", seconds, reset=False)
    await asyncio.sleep(0.2)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    writer.close()
    stats_after = await client.info("commandstats")
    await client.aclose()
    for own in ("info", "monitor"):  # this function's own commands
        counts.pop(own, None)
    evalsha = stats_after["cmdstat_evalsha"]["calls"] - stats_before["cmdstat_evalsha"]["calls"]
    creates = result.requests
    return {
        "creates": creates,
        "per_create": {k: round(v / creates, 4) for k, v in sorted(counts.items())},
        "commandstats_evalsha_per_create": round(evalsha / creates, 4),
        "note": "counted with MONITOR (commands from Lua scripts excluded) during a "
        f"{seconds:.0f} s wrk run",
    }
