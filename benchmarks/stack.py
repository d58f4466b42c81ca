"""The system under test: a private Redis, gateway processes, a tenant and enrolled devices."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from approvals.ids import shard_for
from approvals.store import keys
from approvals.store.backend import connect
from approvals.store.tenants import TenantStore
from benchmarks import procs
from pushgate.devicekit.authenticator import SoftAuthenticator
from pushgate.devicekit.client import DeviceClient
from pushgate.embedded import EmbeddedRedis

SECRET_KEY = base64.b64encode(b"b" * 32).decode()
SHARDS = 16
#: fatigue caps at their upper bounds and a long TTL, so load runs create real challenges
BENCH_POLICY = {
    "max_pushes_per_window": 100,
    "push_window_seconds": 60,
    "max_unanswered_pushes": 100,
    "push_ttl_seconds": 300,
}
APNS_TOPIC = "com.example.pushgate.bench"
CONTEXT = {"ip": "203.0.113.9", "location": "Berlin, DE", "user_agent": "Firefox 135 on macOS"}


def start_redis(cpus: set[int] | None) -> EmbeddedRedis:
    """A private server with AOF on (fsync every second) and no automatic AOF rewrite."""
    server = EmbeddedRedis(appendonly=True)
    server.start()
    assert server._process is not None
    procs.pin(server._process.pid, cpus)
    return server


def redis_pid(server: EmbeddedRedis) -> int:
    assert server._process is not None
    return server._process.pid


async def tune_redis(url: str) -> dict[str, str]:
    """Turn automatic AOF rewrites off (a fork mid-run is noise) and return version facts."""
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        await client.config_set("auto-aof-rewrite-percentage", 0)
        info = await client.info("server")
        persistence = await client.config_get("appendfsync")
        return {
            "server": "valkey" if "valkey_version" in info else "redis",
            "version": str(info.get("valkey_version") or info.get("redis_version")),
            "appendonly": "yes",
            "appendfsync": persistence.get("appendfsync", ""),
        }
    finally:
        await client.aclose()


def gateway_env(redis_url: str, port: int, log_level: str) -> dict[str, str]:
    return {
        "PUSHGATE_REDIS_URL": redis_url,
        "PUSHGATE_SECRET_KEY": SECRET_KEY,
        "PUSHGATE_PUBLIC_URL": f"http://localhost:{port}",
        "PUSHGATE_WEBAUTHN_RP_ID": "localhost",
        "PUSHGATE_LOG_LEVEL": log_level,
        "PUSHGATE_LOG_FORMAT": "json",
        "PUSHGATE_SHARDS": str(SHARDS),
        "PUSHGATE_DRAIN_SECONDS": "1",
    }


@dataclass
class Server:
    """One HTTP server child process on a loopback port."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        procs.stop(self.proc)


def start_gateway(
    redis_url: str, log_level: str, cpus: set[int] | None, logdir: Path, name: str
) -> Server:
    """``pushgate serve`` in its own process; its JSON log lines go to /dev/null."""
    port = procs.free_port()
    argv = [str(Path(procs.PYTHON).parent / "pushgate"), "serve", "--port", str(port)]
    proc = procs.spawn(
        argv, env=gateway_env(redis_url, port, log_level), cpus=cpus, log=logdir / f"{name}.err"
    )
    procs.wait_port(port, proc)
    return Server(name, proc, port)


def start_baseline(redis_url: str, log_level: str, cpus: set[int] | None, logdir: Path) -> Server:
    """The hello-world / bare websocket / echo server (same runtime as ``pushgate serve``)."""
    port = procs.free_port()
    argv = [procs.PYTHON, "-m", "benchmarks.baseline_server", "--port", str(port)]
    argv += ["--redis-url", redis_url]
    env = {"PUSHGATE_LOG_LEVEL": log_level}
    proc = procs.spawn(argv, env=env, cpus=cpus, log=logdir / "baseline.err")
    procs.wait_port(port, proc)
    return Server("baseline", proc, port)


@dataclass
class Device:
    """An enrolled device of one user (its authenticator signs answers)."""

    user_id: str
    platform: str
    client: DeviceClient


@dataclass
class Tenant:
    tenant_id: str
    admin_key: str
    portal_key: str
    users: dict[str, list[str]] = field(default_factory=dict)  # pool name -> user ids
    devices: dict[str, Device] = field(default_factory=dict)  # user id -> device

    @property
    def portal_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.portal_key}", "Content-Type": "application/json"}


async def make_tenant(redis_url: str) -> Tenant:
    """Create a tenant with an admin and a portal key, as ``pushgate tenant create`` does."""
    backend = connect(redis_url, shards=SHARDS)
    try:
        store = TenantStore(backend)
        tenant_id, _, admin_key = await store.create_tenant("bench", 0)
        _, portal_key = await store.create_key(tenant_id, "portal", 0)
    finally:
        await backend.close()
    return Tenant(tenant_id, admin_key, portal_key)


async def set_policy(
    session: aiohttp.ClientSession,
    gateway: Server,
    tenant: Tenant,
    policy: dict[str, Any] | None = None,
) -> None:
    """Set the tenant's policy (``BENCH_POLICY`` unless given) through ``PATCH /v1/policy``."""
    headers = {"Authorization": f"Bearer {tenant.admin_key}"}
    async with session.patch(
        gateway.url + "/v1/policy", json=policy or BENCH_POLICY, headers=headers
    ) as resp:
        if resp.status != 200:
            raise RuntimeError(f"PATCH /v1/policy: {resp.status} {await resp.text()}")


def push_token(platform: str) -> str | None:
    if platform == "apns":
        return secrets.token_hex(32)
    if platform == "fcm":
        return "fcm-" + secrets.token_urlsafe(104)
    return None


async def enroll_pool(
    session: aiohttp.ClientSession,
    gateway: Server,
    tenant: Tenant,
    pool: str,
    count: int,
    platform: str,
    concurrency: int = 8,
) -> list[str]:
    """Enroll ``count`` users, one device each, through the real enrollment routes."""
    users = [f"{pool}-{i:05d}" for i in range(count)]
    origin = f"http://localhost:{gateway.port}"
    gate = asyncio.Semaphore(concurrency)

    async def one(user_id: str) -> None:
        async with gate:
            url = f"{gateway.url}/v1/users/{user_id}/push-enrollments"
            async with session.post(url, headers=tenant.portal_headers) as resp:
                body = await resp.json()
                if resp.status != 201:
                    raise RuntimeError(f"enrollment code: {resp.status} {body}")
            device = DeviceClient(
                gateway.url,
                session=session,
                authenticator=SoftAuthenticator.generate(origin=origin, rp_id="localhost"),
            )
            await device.enroll(
                body["code"],
                platform=platform,  # type: ignore[arg-type]
                push_token=push_token(platform),
                app_bundle_id=APNS_TOPIC if platform == "apns" else None,
            )
            tenant.devices[user_id] = Device(user_id, platform, device)

    await asyncio.gather(*(one(u) for u in users))
    tenant.users[pool] = users
    return users


async def reset_fatigue(redis_url: str, tenant: Tenant, users: list[str]) -> None:
    """Clear the users' push-window and unanswered counters between runs (harness only)."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        pipe = client.pipeline(transaction=False)
        for user_id in users:
            uk = keys.UserKeys(
                shard_for(tenant.tenant_id, user_id, SHARDS), tenant.tenant_id, user_id
            )
            pipe.delete(uk.push_window)
            pipe.hset(uk.user, "unanswered", 0)
        await pipe.execute()
    finally:
        await client.aclose()


def create_body(user_id: str, resource: str) -> dict[str, Any]:
    return {"user_id": user_id, "resource": resource, "app_name": "Salesforce", "context": CONTEXT}


async def create_challenges(
    session: aiohttp.ClientSession,
    gateway: Server,
    tenant: Tenant,
    users: list[str],
    count: int,
    tag: str,
    concurrency: int = 32,
) -> list[dict[str, Any]]:
    """Create ``count`` challenges round-robin over ``users`` (setup, not timed)."""
    out: list[dict[str, Any]] = [{} for _ in range(count)]
    nxt = iter(range(count))
    tag = f"{tag}-{secrets.token_hex(3)}"  # resources never repeat across calls

    async def loop() -> None:
        for i in nxt:
            body = create_body(users[i % len(users)], f"{tag}-{i}")
            async with session.post(
                gateway.url + "/v1/challenges", data=json.dumps(body), headers=tenant.portal_headers
            ) as resp:
                reply = await resp.json()
                if resp.status != 201:
                    raise RuntimeError(f"create: {resp.status} {reply}")
                out[i] = reply

    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return out
