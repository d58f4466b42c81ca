"""Real processes for delivery fault tests: a gateway, workers, the APNs and FCM stand-ins
(``python -m pusher.standins``) driven over their control API, and software phones."""

from __future__ import annotations

import ssl
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from approvals.store import keys
from pushgate.devicekit.authenticator import SoftAuthenticator
from pushgate.devicekit.client import DeviceClient
from pushgate.embedded import free_port
from tests.integration.processes import (
    Process,
    base_env,
    cli_json,
    processes,
    start_gateway,
    start_standin,
    start_worker,
    status_of,
    wait_until,
)
from tests.portal import Portal

TOPIC = "com.example.pushgate"
SHARDS = 4


@dataclass(frozen=True)
class Push:
    """One notification a stand-in accepted (answered 200)."""

    kind: str  # "prompt" | "follow-up"
    challenge_id: str
    token: str
    at: float


class StandinControl:
    """A stand-in process's JSON control API (``/_standin/...``)."""

    def __init__(self, session: aiohttp.ClientSession, info: dict[str, Any]) -> None:
        self.info = info
        self.url = str(info["url"])
        self._session = session
        self._ssl = ssl.create_default_context(cafile=info["ca_file"])

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        async with self._session.request(
            method, f"{self.url}/_standin/{path}", json=body, ssl=self._ssl
        ) as resp:
            assert resp.status < 300, await resp.text()
            return await resp.json() if resp.status != 204 else None

    async def faults(self, **plan: Any) -> None:
        """Apply a fault plan (see ``pusher.standins.faults``)."""
        await self._call("POST", "faults", plan)

    async def heal(self) -> None:
        """Drop every fault: the service answers normally again."""
        await self._call("DELETE", "faults")

    async def outage(self, seconds: float) -> None:
        """Take the service down (connections refused) for ``seconds``."""
        await self._call("POST", "outage", {"seconds": seconds})

    async def until_up(self) -> None:
        """Wait until the service answers again (after an outage)."""

        async def up() -> bool:
            try:
                await self._call("GET", "health")
            except aiohttp.ClientConnectionError:
                return False
            return True

        await wait_until(up, f"{self.url} to answer", 30)

    async def in_progress(self) -> int:
        return int((await self._call("GET", "summary"))["in_progress"])

    async def received(self) -> list[dict[str, Any]]:
        return list((await self._call("GET", "received"))["received"])

    async def accepted(self) -> list[Push]:
        """Every notification answered 200, oldest first."""
        return [_push(r) for r in await self.received() if r["status"] == 200]


def _push(record: dict[str, Any]) -> Push:
    payload = record["payload"]
    if "aps" in payload:  # APNs
        follow_up = "status" in payload
        challenge_id = record["headers"]["apns-collapse-id"]
    else:  # FCM
        data = payload["message"]["data"]
        follow_up = "status" in data
        challenge_id = data["challenge_id"]
    kind = "follow-up" if follow_up else "prompt"
    return Push(kind, challenge_id, record["token"], float(record["at"]))


def copies(pushes: list[Push], kind: str) -> Counter[tuple[str, str]]:
    """How many notifications of ``kind`` each (challenge, token) got."""
    return Counter((p.challenge_id, p.token) for p in pushes if p.kind == kind)


@dataclass
class Stack:
    """One gateway, the stand-ins and the environment workers are started with."""

    session: aiohttp.ClientSession
    started: list[Process]
    cwd: Path
    env: dict[str, str]
    portal: Portal
    apns: StandinControl
    fcm: StandinControl
    redis_url: str
    origin: str
    phones: list[DeviceClient] = field(default_factory=list)

    async def worker(self, name: str, **settings: object) -> tuple[Process, int]:
        """A ``pushgate worker`` process with extra settings; returns it and its HTTP port."""
        env = {**self.env, **{f"PUSHGATE_{k.upper()}": str(v) for k, v in settings.items()}}
        return await start_worker(self.started, self.session, env, self.cwd, name)

    async def phone(self, user: str, platform: str, push_token: str = "") -> DeviceClient:
        """A software phone enrolled for ``user`` (apns, fcm, or none: in-app only)."""
        device = DeviceClient(
            self.portal.base_url,
            session=self.session,
            authenticator=SoftAuthenticator.generate(origin=self.origin, rp_id="localhost"),
        )
        extra: dict[str, str] = {}
        if platform != "none":
            extra = {"push_token": push_token}
            if platform == "apns":
                extra["app_bundle_id"] = TOPIC
        code = await self.portal.enrollment_code(user)
        await device.enroll(code, platform=platform, **extra)  # type: ignore[arg-type]
        self.phones.append(device)
        return device

    async def jobs_pending(self) -> int:
        """Jobs read by some worker and not yet acknowledged, over every shard."""
        client = aioredis.Redis.from_url(self.redis_url, decode_responses=True)
        try:
            total = 0
            for shard in range(SHARDS):
                if await client.exists(keys.jobs(shard)):
                    groups = await client.xinfo_groups(keys.jobs(shard))
                    total += sum(int(g["pending"]) + int(g.get("lag") or 0) for g in groups)
            return total
        finally:
            await client.aclose()

    async def until_jobs_done(self, timeout: float = 30.0) -> None:
        """Wait until every job was delivered and acknowledged (all retry loops ended)."""

        async def done() -> bool:
            return await self.jobs_pending() == 0

        await wait_until(done, "every job acknowledged", timeout)

    async def ready(self, port: int) -> int | None:
        return await status_of(self.session, f"http://127.0.0.1:{port}/readyz")


@asynccontextmanager
async def stack(redis_url: str, cwd: Path, **settings: object) -> AsyncIterator[Stack]:
    """Start both stand-ins and a gateway on ``redis_url``; workers are started by the test."""
    port = free_port()
    origin = f"http://localhost:{port}"
    async with aiohttp.ClientSession() as session:
        with processes() as started:
            apns = await start_standin(started, cwd, "apns")
            fcm = await start_standin(started, cwd, "fcm")
            env = base_env(
                redis_url,
                public_url=origin,
                webauthn_origins=origin,
                apns_key_file=apns["key_file"],
                apns_key_id=apns["key_id"],
                apns_team_id=apns["team_id"],
                apns_topic=TOPIC,
                apns_endpoint=apns["url"],
                apns_ca_file=apns["ca_file"],
                fcm_credentials_file=fcm["service_account_file"],
                fcm_project_id=fcm["project_id"],
                fcm_endpoint=fcm["url"],
                fcm_ca_file=fcm["ca_file"],
                **settings,
            )
            tenant = cli_json(env, cwd, "tenant", "create", "acme")
            key = cli_json(env, cwd, "apikey", "create", tenant["tenant_id"], "--role", "admin")
            await start_gateway(started, session, env, cwd, port)
            portal = Portal(session, f"http://127.0.0.1:{port}", str(key["api_key"]))
            rig = Stack(
                session,
                started,
                cwd,
                env,
                portal,
                StandinControl(session, apns),
                StandinControl(session, fcm),
                redis_url,
                origin,
            )
            try:
                yield rig
            finally:
                for phone in rig.phones:
                    await phone.close()
