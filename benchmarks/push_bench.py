"""Push sends/s from one worker process against its floor, and create -> stand-in latency.

The APNs and FCM stand-ins (``python -m pusher.standins``) run in their own processes on
the helper CPU; the worker (``benchmarks.worker_runner``) runs on the server CPU. For
sends/s a backlog of jobs is created while no worker runs, then a fresh worker drains
it; the rate is taken between the 10th and 90th percentile of the stand-in's accept
times, so start-up and tail are left out. The floor is the client library alone
(``benchmarks.push_floor``: aioapns, firebase-admin's async send) sending as many messages
to the same stand-in at the worker's concurrency, on the same CPU, measured the same way.
Latency is measured at a steady, low create rate with the worker running.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from approvals.store import keys
from benchmarks import monitor, procs, stack, stats
from benchmarks.context import Context
from pusher.worker import JOBS_GROUP, RELAY_GROUP

FLOOR_CONCURRENCY = 256  # PUSHGATE_WORKER_CONCURRENCY's default: the worker's sends in flight


class Standin:
    """A stand-in process and what it printed on start."""

    def __init__(self, service: str, workdir: Path, cpus: set[int] | None) -> None:
        state = workdir / f"standin-{service}"
        argv = [procs.PYTHON, "-m", "pusher.standins", service, "--state-dir", str(state)]
        self.proc = procs.spawn(
            argv, cpus=cpus, stdout=subprocess.PIPE, log=workdir / f"standin-{service}.err"
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {service} stand-in did not start")
        self.info: dict[str, Any] = json.loads(line)
        self.ssl = ssl.create_default_context(cafile=self.info["ca_file"])

    @property
    def url(self) -> str:
        return str(self.info["url"])

    async def received(self, session: aiohttp.ClientSession) -> list[dict[str, Any]]:
        async with session.get(self.url + "/_standin/received", ssl=self.ssl) as resp:
            return list((await resp.json())["received"])

    async def forget(self, session: aiohttp.ClientSession) -> None:
        async with session.delete(self.url + "/_standin/received", ssl=self.ssl) as resp:
            resp.raise_for_status()

    def stop(self) -> None:
        procs.stop(self.proc)


def challenge_of(record: dict[str, Any]) -> str:
    """The challenge id a received push is about (APNs collapse id / FCM data)."""
    headers = record.get("headers") or {}
    if "apns-collapse-id" in headers:
        return str(headers["apns-collapse-id"])
    payload = record.get("payload") or {}
    return str(payload.get("message", {}).get("data", {}).get("challenge_id", ""))


class WorkerProcess:
    def __init__(self, ctx: Context, config: dict[str, Any], name: str) -> None:
        ready = ctx.workdir / f"{name}.ready"
        path = ctx.workdir / f"{name}.json"
        path.write_text(json.dumps({**config, "ready_file": str(ready)}))
        env = stack.gateway_env(ctx.redis_url, 8080, "info")
        env["PUSHGATE_WORKER_METRICS_PORT"] = "0"
        argv = [procs.PYTHON, "-m", "benchmarks.worker_runner", str(path)]
        self.proc = procs.spawn(
            argv, env=env, cpus=ctx.server_cpus, log=ctx.workdir / f"{name}.err"
        )
        deadline = time.monotonic() + 30
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start; see {ctx.workdir / f'{name}.err'}")
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        procs.stop(self.proc, timeout=15)


async def _queue_empty(client: aioredis.Redis) -> bool:
    """True when the worker's groups have read and acknowledged every job and every audit
    event (a stream without its group yet, as before a fresh worker starts, is not)."""
    for shard in range(stack.SHARDS):
        for stream, name in ((keys.jobs(shard), JOBS_GROUP), (keys.outbox(shard), RELAY_GROUP)):
            try:
                groups = await client.xinfo_groups(stream)
            except aioredis.ResponseError:
                continue  # no stream: nothing was ever written on this shard
            group = next((g for g in groups if g["name"] == name), None)
            if group is None or group["pending"]:
                return False
            lag = group.get("lag")
            if lag is None:  # Redis cannot tell after a trim: compare the ids instead
                last = (await client.xinfo_stream(stream))["last-generated-id"]
                if group["last-delivered-id"] != last:
                    return False
            elif lag:
                return False
    return True


async def _wait_drained(ctx: Context, limit: float) -> float:
    client = aioredis.Redis.from_url(ctx.redis_url, decode_responses=True)
    started = time.monotonic()
    try:
        while not await _queue_empty(client):
            if time.monotonic() - started > limit:
                raise TimeoutError("the worker did not drain the job streams")
            await asyncio.sleep(0.1)
    finally:
        await client.aclose()
    return time.monotonic() - started


async def _skip_backlog(ctx: Context) -> None:
    """Start the worker's consumer groups at the streams' ends: the jobs and audit events
    left by the earlier create-throughput runs (no worker ran then) stay out of these
    figures. A harness step; a deployment's worker consumes as challenges are created."""
    client = aioredis.Redis.from_url(ctx.redis_url)
    try:
        for shard in range(stack.SHARDS):
            for stream, group in (
                (keys.jobs(shard), JOBS_GROUP),
                (keys.outbox(shard), RELAY_GROUP),
            ):
                try:
                    await client.xgroup_create(stream, group, id="$", mkstream=True)
                except aioredis.ResponseError:  # BUSYGROUP: it exists, move it
                    await client.xgroup_setid(stream, group, id="$")
    finally:
        await client.aclose()


def _steady_rate(times: list[float]) -> float:
    ordered = sorted(times)
    lo, hi = ordered[len(ordered) // 10], ordered[(len(ordered) * 9) // 10]
    count = (len(ordered) * 9) // 10 - len(ordered) // 10
    return count / (hi - lo) if hi > lo else float("nan")


async def _drain(
    ctx: Context,
    config: dict[str, Any],
    standin: Standin,
    provider: str,
    others: dict[str, int],
    count: int,
    *,
    monitored: bool = False,
) -> dict[str, Any]:
    users = ctx.tenant.users[provider]
    await stack.reset_fatigue(ctx.redis_url, ctx.tenant, users)
    await stack.create_challenges(
        ctx.session, ctx.gateways["info"], ctx.tenant, users, count, f"drain-{provider}"
    )
    await standin.forget(ctx.session)
    watch = monitor.counting(ctx.redis_port) if monitored else monitor.nothing()
    async with watch as commands:
        worker = WorkerProcess(ctx, config, f"worker-{provider}")
        meter = procs.CpuMeter({"worker": worker.pid, **others})
        meter.start()
        try:
            seconds = await _wait_drained(ctx, limit=count / 50 + 60)
            cpu = meter.stop()
        finally:
            worker.stop()
    received = [r for r in await standin.received(ctx.session) if r["status"] == 200]
    if monitored:
        return {"jobs": count, "redis_commands_per_job": monitor.per_unit(commands, count)}
    rate = _steady_rate([r["at"] for r in received])
    return {
        "jobs": count,
        "delivered": len(received),
        "sends_per_second": round(rate, 1),
        "drain_seconds_including_start": round(seconds, 2),
        "cpu_cores": cpu,
        "worker_cpu_ms_per_send": round(cpu["worker"] * seconds * 1000 / max(1, len(received)), 3),
    }


async def _floor(
    ctx: Context, config: dict[str, Any], standin: Standin, provider: str, count: int
) -> dict[str, Any]:
    """The client library alone sending ``count`` messages at the worker's concurrency."""
    token = (lambda i: f"{i:064x}") if provider == "apns" else (lambda i: f"fcm-floor:{i:040d}")
    path = ctx.workdir / f"floor-{provider}.json"
    path.write_text(
        json.dumps(
            {
                **config,
                "provider": provider,
                "count": count,
                "concurrency": FLOOR_CONCURRENCY,
                "tokens": [token(i) for i in range(64)],
            }
        )
    )
    argv = [procs.PYTHON, "-m", "benchmarks.push_floor", str(path)]
    proc = procs.spawn(
        argv,
        cpus=ctx.server_cpus,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        log=ctx.workdir / f"floor-{provider}.err",
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        if (await asyncio.to_thread(proc.stdout.readline)).strip() != b"ready":
            raise RuntimeError(f"the {provider} floor did not start")
        await standin.forget(ctx.session)
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        report = json.loads(await asyncio.to_thread(proc.stdout.readline))
    finally:
        procs.stop(proc)
    received = [r for r in await standin.received(ctx.session) if r["status"] == 200]
    return {
        "sends": count,
        "delivered": len(received),
        "failures": report["failures"],
        "sends_per_second": round(_steady_rate([r["at"] for r in received]), 1),
        "cpu_ms_per_send": round(report["cpu_seconds"] * 1000 / count, 3),
    }


async def _e2e(ctx: Context, standins: dict[str, Standin]) -> dict[str, Any]:
    """Creates at a steady rate, alternating providers; latency to the stand-in's receipt."""
    rate, seconds = ctx.profile.e2e_rate, ctx.profile.e2e_seconds
    total = int(rate * seconds)
    sent: dict[str, tuple[str, float]] = {}
    gateway = ctx.gateways["info"]
    for name in standins:
        await stack.reset_fatigue(ctx.redis_url, ctx.tenant, ctx.tenant.users[name])
        await standins[name].forget(ctx.session)
    names = list(standins)

    async def one(i: int) -> None:
        provider = names[i % len(names)]
        users = ctx.tenant.users[provider]
        body = stack.create_body(users[(i // len(names)) % len(users)], f"e2e-{i}")
        at = time.time()
        async with ctx.session.post(
            gateway.url + "/v1/challenges", json=body, headers=ctx.tenant.portal_headers
        ) as resp:
            reply = await resp.json()
            if resp.status != 201:
                raise RuntimeError(f"create: {resp.status} {reply}")
        sent[reply["id"]] = (provider, at)

    tasks = []
    start = time.perf_counter()
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    await _wait_drained(ctx, limit=60)
    await asyncio.sleep(0.5)
    out: dict[str, Any] = {"rate": rate, "seconds": seconds}
    for name, standin in standins.items():
        lat = []
        for record in await standin.received(ctx.session):
            hit = sent.get(challenge_of(record))
            if hit is not None and hit[0] == name and record["status"] == 200:
                lat.append((record["at"] - hit[1]) * 1000)
        out[name] = stats.latency_summary(lat)
    return out


async def run_push(ctx: Context) -> dict[str, Any]:
    """Sends/s per provider (backlog drain) and create -> received latency."""
    ctx.say("  enrolling APNs and FCM devices")
    for provider in ("apns", "fcm"):
        await stack.enroll_pool(
            ctx.session,
            ctx.gateways["info"],
            ctx.tenant,
            provider,
            ctx.profile.push_users,
            provider,
        )
    await _skip_backlog(ctx)
    standins = {name: Standin(name, ctx.workdir, ctx.aux_cpus) for name in ("apns", "fcm")}
    try:
        apns, fcm = standins["apns"].info, standins["fcm"].info
        config = {
            "apns": {
                "key_file": apns["key_file"],
                "key_id": apns["key_id"],
                "team_id": apns["team_id"],
                "topic": stack.APNS_TOPIC,
                "url": apns["url"],
                "ca_file": apns["ca_file"],
            },
            "fcm": {
                "service_account_file": fcm["service_account_file"],
                "project_id": fcm["project_id"],
                "url": fcm["url"],
                "ca_file": fcm["ca_file"],
            },
        }
        out: dict[str, Any] = {"providers": ["apns", "fcm"], "rounds": ctx.profile.rounds}
        for name, standin in standins.items():
            others = {"standin": standin.proc.pid, "redis": stack.redis_pid(ctx.redis)}
            floors, drains = [], []
            for _ in range(ctx.profile.rounds):  # interleaved, so drift hits both alike
                floors.append(await _floor(ctx, config, standin, name, ctx.profile.push_backlog))
                ctx.say(f"  {name} library alone: {floors[-1]}")
                drains.append(
                    await _drain(ctx, config, standin, name, others, ctx.profile.push_backlog)
                )
                ctx.say(f"  {name} worker: {drains[-1]}")
            out[f"floor_{name}"] = floors
            out[f"drain_{name}"] = drains
            out[f"ratio_{name}"] = stats.ratio_summary(
                [
                    d["sends_per_second"] / f["sends_per_second"]
                    for d, f in zip(drains, floors, strict=True)
                ]
            )
            out[f"round_trips_{name}"] = await _drain(
                ctx, config, standin, name, others, ctx.profile.push_backlog, monitored=True
            )
        worker = WorkerProcess(ctx, config, "worker-e2e")
        try:
            out["e2e_ms"] = await _e2e(ctx, standins)
            ctx.say(f"  create -> received: {out['e2e_ms']}")
        finally:
            worker.stop()
        return out
    finally:
        for standin in standins.values():
            standin.stop()
