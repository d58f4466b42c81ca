"""Run every benchmark: ``python -m benchmarks [--quick] [--only p1,p2,push,idle,surge]``.

Writes ``benchmarks/results/latest.json`` (``--quick`` writes ``quick.json``) and prints
the Markdown table that goes into ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

from benchmarks import (
    http_bench,
    idle_bench,
    procs,
    push_bench,
    redis_bench,
    report,
    stack,
    surge_bench,
)
from benchmarks.context import Context
from benchmarks.profile import FULL, QUICK

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = ("p1", "idle", "push", "p2", "surge")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--only", help=f"comma list of {', '.join(PARTS)}")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    parser.add_argument("--out", type=Path, help="results file (default results/latest.json)")
    return parser


def save(results: dict[str, Any], out: Path) -> None:
    """Write the results so far (a crash late in the run keeps the earlier figures)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


async def _with_stack(
    out: Path,
    profile: Any,
    parts: set[str],
    server_cpus: Any,
    aux_cpus: Any,
    workdir: Path,
    results: dict[str, Any],
) -> None:
    redis = stack.start_redis(aux_cpus)
    servers: list[stack.Server] = []
    try:
        results["redis"] = await stack.tune_redis(redis.url)
        gateways = {
            level: stack.start_gateway(redis.url, level, server_cpus, workdir, f"gateway-{level}")
            for level in ("info", "warning")
        }
        servers.extend(gateways.values())
        baseline = stack.start_baseline(redis.url, "info", server_cpus, workdir)
        servers.append(baseline)
        tenant = await stack.make_tenant(redis.url)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            ctx = Context(
                profile, server_cpus, aux_cpus, workdir, redis, session, tenant, gateways, baseline
            )
            await stack.set_policy(session, gateways["info"], tenant)
            ctx.say("enrolling devices through the real routes")
            await stack.enroll_pool(
                session, gateways["info"], tenant, "load", profile.load_users, "none"
            )
            await stack.enroll_pool(
                session, gateways["info"], tenant, "latency", profile.latency_users, "none"
            )
            if "p1" in parts:
                ctx.say("P1: creates/s vs hello-world")
                results["p1"] = await http_bench.run_p1(ctx)
                results["round_trips"] = await http_bench.round_trips(ctx)
                save(results, out)
                ctx.say(f"  round trips per create: {results['round_trips']['per_create']}")
            if "push" in parts:
                ctx.say("push: worker sends/s and create -> stand-in latency")
                results["push"] = await push_bench.run_push(ctx)
                save(results, out)
            if "idle" in parts:
                ctx.say("P3/P4/P5: idle websockets")
                results["idle"] = await idle_bench.run_idle(ctx)
                save(results, out)
            if "surge" in parts:
                ctx.say("memory after a surge of portal websockets")
                results["surge"] = await surge_bench.run_surge(ctx)
                save(results, out)
    finally:
        for server in servers:
            server.stop()
        redis.close()


async def _main(args: argparse.Namespace, out: Path, base: dict[str, Any]) -> dict[str, Any]:
    profile = QUICK if args.quick else FULL
    parts = set(args.only.split(",")) if args.only else set(PARTS)
    procs.raise_nofile()
    server_cpus, aux_cpus = procs.cpu_sets(not args.no_pin)
    if aux_cpus is not None:
        os.sched_setaffinity(0, aux_cpus)
    results: dict[str, Any] = {
        **base,
        "profile": profile.name,
        "command": "python -m benchmarks" + (" --quick" if args.quick else ""),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": report.machine(),
        "pinning": {
            "server_cpus": sorted(server_cpus) if server_cpus else None,
            "helper_cpus": sorted(aux_cpus) if aux_cpus else None,
        },
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pushgate-bench-") as tmp:
        workdir = Path(tmp)
        if parts & {"p1", "idle", "push", "surge"}:
            await _with_stack(out, profile, parts, server_cpus, aux_cpus, workdir, results)
        if "p2" in parts:
            sys.stderr.write("P2: create script EVALSHA/s vs SET/s\n")
            results["p2"] = await redis_bench.run_p2(profile, server_cpus, aux_cpus)
    results["seconds"] = round(time.monotonic() - started, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = args.out or RESULTS / ("quick.json" if args.quick else "latest.json")
    previous: dict[str, Any] = {}
    if args.only:
        with contextlib.suppress(FileNotFoundError, ValueError):
            previous = json.loads(out.read_text())
    results = uvloop.run(_main(args, out, previous))
    save(results, out)
    sys.stdout.write(report.machine_markdown(results) + "\n\n" + report.markdown(results) + "\n")
    sys.stderr.write(f"results written to {out}\n")
    return 0
