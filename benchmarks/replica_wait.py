"""What waiting for a replica costs: the same gateway with ``PUSHGATE_REDIS_WAIT_REPLICAS`` 0
and 1 on a primary with one replica, measured in interleaved rounds.

    .venv/bin/python -m benchmarks.replica_wait [--samples 300] [--seconds 5]

P1 side: creates/s of a closed loop (32 clients) and sequential create latency; creates do not
wait, so these should not move. P3 side: approve -> portal ``result`` latency and the device's
own answer latency, sequential, one in flight: the answer script is followed by ``WAIT`` in
the same round trip and the waiting portal's gateway confirms the ended state with one more.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp

from benchmarks import latency, procs, stack, stats
from pushgate.embedded import EmbeddedRedis


def start_gateways(redis_url: str, logdir: Path) -> list[stack.Server]:
    """Two gateways on one Redis, with and without the replica wait; a device enrolled
    through either may answer through the other."""
    ports = [procs.free_port(), procs.free_port()]
    origins = ",".join(f"http://localhost:{p}" for p in ports)
    servers = []
    for replicas, port in enumerate(ports):
        env = {
            **stack.gateway_env(redis_url, port, "warning"),
            "PUSHGATE_REDIS_WAIT_REPLICAS": str(replicas),
            "PUSHGATE_WEBAUTHN_ORIGINS": origins,
        }
        argv = [str(Path(procs.PYTHON).parent / "pushgate"), "serve", "--port", str(port)]
        proc = procs.spawn(argv, env=env, cpus=None, log=logdir / f"wait{replicas}.err")
        procs.wait_port(port, proc)
        servers.append(stack.Server(f"wait={replicas}", proc, port))
    return servers


async def creates_per_second(
    session: aiohttp.ClientSession, gateway: stack.Server, tenant: stack.Tenant, seconds: float
) -> float:
    users = tenant.users["load"]
    done = 0
    deadline = time.monotonic() + seconds

    async def client(n: int) -> None:
        nonlocal done
        i = 0
        while time.monotonic() < deadline:
            body = stack.create_body(users[(n * 7 + i) % len(users)], f"r-{n}-{i}-{time.time_ns()}")
            async with session.post(
                gateway.url + "/v1/challenges", data=json.dumps(body), headers=tenant.portal_headers
            ) as resp:
                await resp.read()
                if resp.status == 201:
                    done += 1
            i += 1

    started = time.monotonic()
    await asyncio.gather(*(client(n) for n in range(32)))
    return done / (time.monotonic() - started)


async def create_latency(
    session: aiohttp.ClientSession, gateway: stack.Server, tenant: stack.Tenant, i: int
) -> float:
    body = stack.create_body(tenant.users["load"][i % 50], f"lat-{i}-{time.time_ns()}")
    started = time.perf_counter()
    async with session.post(
        gateway.url + "/v1/challenges", data=json.dumps(body), headers=tenant.portal_headers
    ) as resp:
        await resp.read()
    return (time.perf_counter() - started) * 1000


async def run(samples: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="pushgate-wait-") as work:
        logdir = Path(work)
        primary = EmbeddedRedis(appendonly=False)
        primary.start()
        replica = EmbeddedRedis(
            appendonly=False, extra_args=("--replicaof", "127.0.0.1", str(primary.port))
        )
        replica.start()
        gateways = start_gateways(primary.url, logdir)
        try:
            tenant = await stack.make_tenant(primary.url)
            async with aiohttp.ClientSession() as session:
                await stack.set_policy(session, gateways[0], tenant)
                await stack.enroll_pool(session, gateways[0], tenant, "load", 200, "none")
                await stack.enroll_pool(session, gateways[0], tenant, "latency", 20, "none")
                ctx = SimpleNamespace(session=session, tenant=tenant)
                rates: dict[str, list[float]] = {g.name: [] for g in gateways}
                results: dict[str, dict[str, list[float]]] = {
                    g.name: {"create": [], "approve_to_result": [], "answer": []} for g in gateways
                }
                for _ in range(3):
                    for gateway in gateways:
                        await stack.reset_fatigue(primary.url, tenant, tenant.users["load"])
                        rates[gateway.name].append(
                            await creates_per_second(session, gateway, tenant, seconds)
                        )
                users = tenant.users["latency"]
                for i in range(samples):
                    if i % 100 == 0:
                        await stack.reset_fatigue(primary.url, tenant, users)
                        await stack.reset_fatigue(primary.url, tenant, tenant.users["load"])
                    for gateway in gateways:
                        got = results[gateway.name]
                        got["create"].append(await create_latency(session, gateway, tenant, i))
                        to_result, to_answer = await latency._approve_once(
                            ctx,  # type: ignore[arg-type]
                            gateway,
                            users[i % len(users)],
                            i,
                        )
                        got["approve_to_result"].append(to_result)
                        got["answer"].append(to_answer)
                return {
                    g.name: {
                        "creates_per_s": [round(r) for r in rates[g.name]],
                        **{k: stats.latency_summary(v) for k, v in results[g.name].items()},
                    }
                    for g in gateways
                }
        finally:
            for gateway in gateways:
                gateway.stop()
            replica.close()
            primary.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replica_wait")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args.samples, args.seconds)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
