"""The delivery promise on real processes: each prompt reaches each phone once, never after its
challenge ended, and the follow-up that replaces it arrives, last.

A ``pushgate serve`` gateway, ``pushgate worker`` processes and the APNs and FCM stand-ins
(``python -m pusher.standins``, real aioapns and firebase-admin on the worker side) run as
child processes; faults are injected over the stand-ins' control API, by ``kill -9`` and by
restarting Redis. A stand-in counts a notification as accepted when it answers it 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from pushgate.devicekit.client import DeviceClient
from pushgate.embedded import EmbeddedRedis
from tests.integration.delivery_rig import Push, Stack, StandinControl, copies, stack
from tests.integration.processes import wait_until

IPHONE = "a1" * 32
ANDROID = "fcm-token:" + "b" * 60
TTL_SECONDS = 15  # the shortest push_ttl_seconds a policy allows


def epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339).timestamp()


async def accepted_for(standin: StandinControl, token: str) -> list[Push]:
    return [p for p in await standin.accepted() if p.token == token]


async def until_accepted(standin: StandinControl, token: str, kind: str, count: int = 1) -> None:
    async def enough() -> bool:
        try:
            pushes = await accepted_for(standin, token)
        except aiohttp.ClientConnectionError:
            return False  # the stand-in is down (an outage the test started)
        return sum(p.kind == kind for p in pushes) >= count

    await wait_until(enough, f"{count} {kind} accepted for …{token[-4:]}", 20)


async def until_answered(standin: StandinControl, token: str, status: int, count: int) -> None:
    async def enough() -> bool:
        seen = [r for r in await standin.received() if r["token"] == token]
        return sum(r["status"] == status for r in seen) >= count

    await wait_until(enough, f"{count} × {status} for …{token[-4:]}", 20)


async def collect(phone: DeviceClient, into: list[dict[str, Any]]) -> None:
    """Every message of the phone's in-app websocket, until cancelled."""
    async with phone.websocket() as socket:
        async for message in socket:
            into.append(message)


async def test_reclaimed_jobs_reach_each_phone_once_after_a_worker_is_killed(
    redis_url: str, tmp_path: Path
) -> None:
    """kill -9 of a worker holding 20 unacknowledged jobs whose sends hang at a slow provider:
    a second worker reclaims them and each prompt reaches each phone (APNs, FCM and in-app)
    exactly once, none missing."""
    async with stack(redis_url, tmp_path) as s:
        users = [f"user{i}" for i in range(10)]
        in_app: dict[str, list[dict[str, Any]]] = {}
        readers = []
        for index, user in enumerate(users):
            await s.phone(user, "apns", f"{index:02x}" * 32)
            await s.phone(user, "fcm", f"fcm-token:{index:02d}" + "z" * 40)
            app = await s.phone(user, "none")
            in_app[user] = []
            readers.append(asyncio.create_task(collect(app, in_app[user])))
        await s.apns.faults(latency=60)
        await s.fcm.faults(latency=60)
        doomed, _ = await s.worker("worker-a", worker_concurrency=64)
        created = {
            (await s.portal.create_challenge(user, resource=resource)).body["id"]: user
            for user in users
            for resource in ("salesforce", "workday")
        }
        assert len(created) == 20

        async def all_in_flight() -> bool:
            return await s.apns.in_progress() == 20 and await s.fcm.in_progress() == 20

        await wait_until(all_in_flight, "20 prompts in flight at each provider", 20)
        doomed.popen.send_signal(signal.SIGKILL)
        assert await doomed.wait(10) == -signal.SIGKILL
        await s.apns.heal()
        await s.fcm.heal()
        await s.worker("worker-b", worker_reclaim_idle_ms=500)
        # worker-a's attempts were in flight: their claims must lapse (push timeout + 1 s)
        await s.until_jobs_done(timeout=60)

        apns, fcm = await s.apns.accepted(), await s.fcm.accepted()
        tokens = {
            user: (f"{i:02x}" * 32, f"fcm-token:{i:02d}" + "z" * 40) for i, user in enumerate(users)
        }
        assert copies(apns, "prompt") == Counter({(c, tokens[u][0]): 1 for c, u in created.items()})
        assert copies(fcm, "prompt") == Counter({(c, tokens[u][1]): 1 for c, u in created.items()})
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for user, messages in in_app.items():
            prompts = Counter(m["challenge"]["id"] for m in messages if m["type"] == "challenge")
            assert prompts == Counter({c: 1 for c, u in created.items() if u == user}), user


async def test_no_prompt_after_the_answer_and_the_follow_up_arrives_last(
    redis_url: str, tmp_path: Path
) -> None:
    """FCM answers 503 until 0.5 s after the user approved on the iPhone: the Android phone is
    sent no prompt after the approval (no retry of the library's own either), and gets the
    follow-up once FCM recovers; the deciding iPhone gets no follow-up."""
    async with stack(redis_url, tmp_path) as s:
        iphone = await s.phone("alice", "apns", IPHONE)
        await s.phone("alice", "fcm", ANDROID)
        await s.fcm.faults(tokens={ANDROID: {"status": 503, "reason": "UNAVAILABLE"}})
        await s.worker("worker")
        created = (await s.portal.create_challenge("alice")).body
        await until_accepted(s.apns, IPHONE, "prompt")
        await until_answered(s.fcm, ANDROID, 503, 2)
        await iphone.respond(created["id"], "approve", number=created["number"])
        await asyncio.sleep(0.5)
        await s.fcm.heal()
        await until_accepted(s.fcm, ANDROID, "follow-up")
        await s.until_jobs_done()
        decided = (await s.portal.call("GET", f"/v1/challenges/{created['id']}")).body
        assert decided["status"] == "approved"
        android = await accepted_for(s.fcm, ANDROID)
        assert [p.kind for p in android] == ["follow-up"]
        assert android[0].at >= epoch(decided["decided_at"])
        assert [p.kind for p in await accepted_for(s.apns, IPHONE)] == ["prompt"]


async def test_provider_back_after_a_deny_gets_only_the_follow_up(
    redis_url: str, tmp_path: Path
) -> None:
    """APNs is down (connections refused) when the prompt goes out and comes back after the
    user denied on the Android phone: the iPhone gets the follow-up and never the prompt."""
    async with stack(redis_url, tmp_path) as s:
        await s.phone("bob", "apns", IPHONE)
        android = await s.phone("bob", "fcm", ANDROID)
        _, port = await s.worker("worker")
        await s.apns.outage(6.0)  # long enough for the deny to come while APNs is down
        await asyncio.sleep(0.2)  # the outage starts 50 ms after the control call answered
        created = (await s.portal.create_challenge("bob")).body
        await until_accepted(s.fcm, ANDROID, "prompt")
        await wait_until(
            lambda: metric_at_least(
                s, port, 'pushgate_push_sends_total{provider="apns",result="retry"}', 1
            ),
            "an APNs attempt refused",
            10,
        )
        await android.respond(created["id"], "deny")
        await until_accepted(s.apns, IPHONE, "follow-up")
        await s.until_jobs_done()
        assert [p.kind for p in await accepted_for(s.apns, IPHONE)] == ["follow-up"]
        assert [p.kind for p in await accepted_for(s.fcm, ANDROID)] == ["prompt"]


async def test_providers_failing_past_the_deadline_never_deliver_a_late_prompt(
    redis_url: str, tmp_path: Path
) -> None:
    """FCM answers 503 and APNs is down for the whole TTL, both recover after the expiry: no
    prompt is delivered after the challenge expired, on either phone."""
    async with stack(redis_url, tmp_path) as s:
        await s.phone("carol", "apns", IPHONE)
        await s.phone("carol", "fcm", ANDROID)
        patched = await s.portal.call("PATCH", "/v1/policy", {"push_ttl_seconds": TTL_SECONDS})
        assert patched.status == 200
        await s.fcm.faults(tokens={ANDROID: {"status": 503, "reason": "UNAVAILABLE"}})
        await s.worker("worker")
        await s.apns.outage(TTL_SECONDS + 5.0)
        await asyncio.sleep(0.2)  # the outage starts 50 ms after the control call answered
        created = (await s.portal.create_challenge("carol")).body
        expires_at = epoch(created["expires_at"])
        await asyncio.sleep(max(0.0, expires_at - time.time()) + 0.5)
        await s.fcm.heal()
        await s.until_jobs_done(timeout=TTL_SECONDS)
        view = (await s.portal.call("GET", f"/v1/challenges/{created['id']}")).body
        assert view["status"] == "expired"
        await s.apns.until_up()
        prompts = [
            p for p in await s.apns.accepted() + await s.fcm.accepted() if p.kind == "prompt"
        ]
        assert prompts == []


async def test_follow_up_is_retried_until_the_provider_recovers(
    redis_url: str, tmp_path: Path
) -> None:
    """APNs answers 503 when the follow-up goes out: it is retried with backoff and delivered
    once APNs recovers, before the prompt would have expired."""
    async with stack(redis_url, tmp_path) as s:
        await s.phone("dave", "apns", IPHONE)
        android = await s.phone("dave", "fcm", ANDROID)
        await s.worker("worker")
        created = (await s.portal.create_challenge("dave")).body
        await until_accepted(s.apns, IPHONE, "prompt")
        await s.apns.faults(tokens={IPHONE: {"status": 503, "reason": "ServiceUnavailable"}})
        await android.respond(created["id"], "approve", number=created["number"])
        await until_answered(s.apns, IPHONE, 503, 2)
        await s.apns.heal()
        await until_accepted(s.apns, IPHONE, "follow-up")
        iphone = await accepted_for(s.apns, IPHONE)
        assert [p.kind for p in iphone] == ["prompt", "follow-up"]
        assert iphone[-1].at < epoch(created["expires_at"])


async def metric_at_least(s: Stack, port: int, sample: str, value: float) -> bool:
    """Whether a worker's /metrics shows ``sample`` at ``value`` or more."""
    async with s.session.get(f"http://127.0.0.1:{port}/metrics") as resp:
        text = await resp.text()
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1]) >= value
    return False


async def test_worker_is_unready_while_redis_is_down_and_delivers_again_once_it_is_back(
    tmp_path: Path,
) -> None:
    """Redis killed (-9) while five sends are in flight and restarted on the same port: the
    worker's /readyz answers 503 meanwhile and 200 after; the jobs in flight are recorded and
    acknowledged without waiting for the reclaim time, challenges created after the restart are
    delivered, and every prompt reaches its phone exactly once."""
    with EmbeddedRedis(extra_args=("--appendfsync", "always")) as redis_server:
        async with stack(redis_server.url, tmp_path) as s:
            phones = {f"erin{i}": f"{i:02x}" * 32 for i in range(5)}
            for user, token in phones.items():
                await s.phone(user, "apns", token)
            _, port = await s.worker("worker", worker_reclaim_idle_ms=600_000)
            await s.apns.faults(latency=1.5)
            before = [(await s.portal.create_challenge(u, resource="vpn")).body for u in phones]

            async def in_flight() -> bool:
                return await s.apns.in_progress() == len(phones)

            await wait_until(in_flight, "five prompts in flight", 10)
            redis_server.kill()

            async def unready() -> bool:
                return await s.ready(port) == 503

            await wait_until(unready, "the worker's /readyz to answer 503", 10)

            async def accepted_while_down() -> bool:
                return len(await s.apns.accepted()) == len(phones)

            await wait_until(accepted_while_down, "the prompts in flight accepted", 10)
            await s.apns.heal()
            redis_server.start()
            back_at = time.monotonic()

            async def ready() -> bool:
                return await s.ready(port) == 200

            await wait_until(ready, "the worker's /readyz to answer 200", 10)
            await s.until_jobs_done(timeout=10)
            settled_after = time.monotonic() - back_at
            after = [await create_when_reachable(s, u, "mail") for u in phones]
            await until_accepted(s.apns, phones["erin4"], "prompt", 2)
            await s.until_jobs_done(timeout=10)
            prompts = copies(await s.apns.accepted(), "prompt")
            tokens = [phones[c["user_id"]] for c in before + after]
            expected = Counter(
                {(c["id"], t): 1 for c, t in zip(before + after, tokens, strict=True)}
            )
            assert prompts == expected, prompts
            assert settled_after < 10, settled_after


async def create_when_reachable(s: Stack, user: str, resource: str) -> dict[str, Any]:
    """Create a challenge, retrying while the gateway still answers 503 after an outage."""
    for _ in range(100):
        with contextlib.suppress(aiohttp.ClientError):
            reply = await s.portal.create_challenge(user, resource=resource)
            if reply.status == 201:
                return dict(reply.body)
            assert reply.status == 503, reply.body
        await asyncio.sleep(0.1)
    raise AssertionError("the gateway did not recover")
