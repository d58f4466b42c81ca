"""P2: the create script's EVALSHA/s ÷ plain SET/s, same client, same concurrency.

Two clients, each used for both commands:

- **redis-py asyncio** (the gateway's client and connection settings): 32 tasks, one
  command in flight each, no pipelining. EVALSHA goes through ``ChallengeStore.create``
  with the same keys and packed arguments as the gateway's, its batching off (in the
  gateway, creates of the same loop turn share a pipeline; here each is its own round trip).
- **raw pipelined RESP** (redis-benchmark style): 8 connections, 16 commands per batch,
  commands encoded before the clock starts, so the server's cost dominates.

Every EVALSHA takes the full "created" path (a fresh user with an active device, no
dedupe hit, under the fatigue caps). Redis runs on the server CPU, clients on the other.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import hiredis
import redis.asyncio as aioredis

from approvals.ids import new_challenge_id
from approvals.store.backend import Backend, connect
from approvals.store.batching import ScriptBatcher
from approvals.store.challenges import ChallengeStore, NewChallenge
from approvals.store.scripts import script_source
from benchmarks import stack, stats
from benchmarks.profile import Profile
from policies.policy import Policy

POLICY = Policy(**stack.BENCH_POLICY)  # type: ignore[arg-type]
PER_USER = 50  # creates per synthetic user (caps are 100)
VALUE = "x" * 16


def _resp(*parts: Any) -> bytes:
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        raw = part if isinstance(part, bytes) else str(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


class _Users:
    """Synthetic users with one active device each, fresh for every run."""

    def __init__(self) -> None:
        self.serial = 0

    async def make(self, client: aioredis.Redis, count: int, backend: Backend) -> list[str]:
        users = [f"p2-{self.serial}-{i}" for i in range(count)]
        self.serial += 1
        pipe = client.pipeline(transaction=False)
        for user_id in users:
            pipe.sadd(backend.user_keys("p2", user_id).active_devices, "dev")
        await pipe.execute()
        return users


def _challenges(backend: Backend, users: list[str], count: int, tag: str) -> list[NewChallenge]:
    out = []
    for i in range(count):
        user_id = users[i // PER_USER]
        out.append(
            NewChallenge(
                challenge_id=new_challenge_id(backend.user_keys("p2", user_id).shard),
                tenant="p2",
                user_id=user_id,
                resource=f"{tag}-{i}",
                app_name="Salesforce",
                context=stack.CONTEXT,
                number_matching=True,
                number="47",
                nonce="n" * 22,
            )
        )
    return out


async def _encoded_creates(backend: Backend, sha: str, items: list[NewChallenge]) -> list[bytes]:
    """The exact EVALSHA commands ``ChallengeStore.create`` sends, RESP-encoded."""
    captured: list[bytes] = []

    async def capture(script: Any, keys: list[str], args: list[Any]) -> list[Any]:
        captured.append(_resp("EVALSHA", sha, len(keys), *keys, *args))
        return ["created", []]

    fake = dataclasses.replace(
        backend, redis=None, scripts=SimpleNamespace(create_challenge=None), batched=capture
    )
    store = ChallengeStore(fake)
    for item in items:
        await store.create(item, POLICY)
    return captured


async def _redis_py(count: int, concurrency: int, call: Any) -> float:
    queue = iter(range(count))

    async def loop() -> None:
        for i in queue:
            await call(i)

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


def _ok(reply: Any) -> bool:
    return bool(reply == b"OK")


def _created(reply: Any) -> bool:
    """The create script's reply: ``created`` and the record it wrote."""
    return isinstance(reply, list) and reply[0] == b"created" and len(reply[1]) > 0


class _Pipelined(asyncio.Protocol):
    def __init__(self, commands: list[bytes], expect: Callable[[Any], bool], depth: int) -> None:
        self.commands = commands
        self.expect = expect
        self.depth = depth
        self.sent = 0
        self.awaited = 0  # replies of the batch in flight not read yet
        self.unexpected: Any = None
        self.reader = hiredis.Reader()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self._next()

    def _next(self) -> None:
        assert self.transport is not None
        batch = self.commands[self.sent : self.sent + self.depth]
        if not batch:
            self.done.set_result(None)
            return
        self.sent += len(batch)
        self.awaited = len(batch)
        self.transport.write(b"".join(batch))

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            self.awaited -= 1
            if self.unexpected is None and not self.expect(reply):
                self.unexpected = reply
        if self.awaited == 0:
            self._next()


async def _raw(
    port: int, commands: list[bytes], expect: Callable[[Any], bool], conns: int, depth: int
) -> float:
    loop = asyncio.get_running_loop()
    protocols = []
    started = time.perf_counter()
    for k in range(conns):
        part = commands[k::conns]
        _, proto = await loop.create_connection(
            lambda part=part: _Pipelined(part, expect, depth), "127.0.0.1", port
        )
        protocols.append(proto)
    await asyncio.wait_for(asyncio.gather(*(p.done for p in protocols)), 120)
    rate = len(commands) / (time.perf_counter() - started)
    for proto in protocols:
        assert proto.transport is not None
        proto.transport.close()
        if proto.unexpected is not None:
            raise RuntimeError(f"unexpected reply: {str(proto.unexpected)[:200]}")
    return rate


async def _usec_per_call(client: aioredis.Redis) -> dict[str, float]:
    """Redis's own time per call (INFO commandstats), over every run of this server."""
    stats_ = await client.info("commandstats")
    return {
        name: float(stats_[f"cmdstat_{name}"]["usec_per_call"])
        for name in ("evalsha", "set")
        if f"cmdstat_{name}" in stats_
    }


async def run_p2(
    profile: Profile, server_cpus: set[int] | None, aux_cpus: set[int] | None
) -> dict[str, Any]:
    """Interleaved SET / EVALSHA runs with both clients; ratios per round."""
    server = stack.start_redis(server_cpus)
    try:
        facts = await stack.tune_redis(server.url)
        backend = connect(server.url, shards=stack.SHARDS)
        client = aioredis.Redis.from_url(server.url)
        sha = await client.script_load(script_source("create_challenge", cluster=False))
        users = _Users()
        count = profile.redis_ops
        runs: dict[str, list[float]] = {
            "py_set": [],
            "py_evalsha": [],
            "raw_set": [],
            "raw_evalsha": [],
        }
        # one call per round trip, like the SETs: concurrent creates do not share pipelines here
        store = ChallengeStore(
            dataclasses.replace(backend, batched=ScriptBatcher(backend.redis, enabled=False))
        )
        for round_no in range(profile.rounds):
            runs["py_set"].append(
                await _redis_py(
                    count, 32, lambda i, r=round_no: backend.redis.set(f"b:{r}:{i}", VALUE)
                )
            )
            people = await users.make(client, -(-count // PER_USER), backend)
            items = _challenges(backend, people, count, f"py{round_no}")
            runs["py_evalsha"].append(
                await _redis_py(count, 32, lambda i, items=items: store.create(items[i], POLICY))
            )
            raw_sets = [_resp("SET", f"raw:{round_no}:{i}", VALUE) for i in range(count * 4)]
            runs["raw_set"].append(await _raw(server.port, raw_sets, _ok, 8, 16))
            people = await users.make(client, -(-count // PER_USER), backend)
            commands = await _encoded_creates(
                backend, sha, _challenges(backend, people, count, f"raw{round_no}")
            )
            runs["raw_evalsha"].append(await _raw(server.port, commands, _created, 8, 16))
        server_cost = await _usec_per_call(client)
        await client.aclose()
        await backend.close()
    finally:
        server.close()
    out: dict[str, Any] = {
        "redis": facts,
        "ops_per_run": count,
        "server_usec_per_call": server_cost,
    }
    for kind in ("py", "raw"):
        sets, evals = runs[f"{kind}_set"], runs[f"{kind}_evalsha"]
        out[kind] = {
            "set_per_second": round(stats.median(sets)),
            "evalsha_per_second": round(stats.median(evals)),
            "ratio": stats.ratio_summary([e / s for e, s in zip(evals, sets, strict=True)]),
        }
    out["py"]["client"] = "redis-py asyncio, 32 tasks, 1 command in flight each, no pipelining"
    out["raw"]["client"] = "pre-encoded RESP, 8 connections x 16 commands per pipelined batch"
    return out
