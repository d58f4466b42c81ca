"""Push delivery through the worker with the real aioapns and firebase-admin clients
pointed at the local APNs and FCM stand-ins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
import redis.asyncio as aioredis

from approvals.store import keys
from pusher.standins.recorder import Received
from pusher.worker import JOBS_GROUP, Worker
from pushgate.settings import Settings
from tests.conftest import TestClock
from tests.integration.conftest import Enroll, Tenant
from tests.integration.standins import TOPIC, Standins, running_standins
from tests.portal import Portal

IPHONE = "a1" * 32
ANDROID = "fcm-token:" + "b" * 60


@pytest.fixture(scope="module")
def standins_running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standins]:
    yield from running_standins(tmp_path_factory.mktemp("standins"))


@pytest.fixture
def standins(standins_running: Standins) -> Standins:
    standins_running.reset()
    return standins_running


@pytest.fixture
async def start_worker(
    settings: Settings, clock: TestClock, standins: Standins
) -> AsyncIterator[Callable[..., Any]]:
    """Start workers with fresh real providers; all are stopped at the end."""
    started: list[Worker] = []

    async def _start(**options: Any) -> Worker:
        worker = Worker(
            settings,
            providers=standins.providers(timeout=options.pop("timeout", 5.0)),
            clock=clock,
            sweep_interval=0.1,
            **options,
        )
        await worker.start()
        started.append(worker)
        return worker

    yield _start
    for worker in started:
        await worker.stop(grace=2)


async def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def delivered(received: list[Received], token: str) -> list[Received]:
    return [r for r in received if r.token == token and r.status == 200]


async def test_challenge_reaches_iphone_and_android_with_the_exact_fields(
    portal: Portal, enroll: Enroll, standins: Standins, start_worker: Callable[..., Any]
) -> None:
    """One challenge goes to both phones with Apple's and Google's fields set as specified."""
    await enroll("alice", platform="apns", push_token=IPHONE, app_bundle_id=TOPIC)
    await enroll("alice", platform="fcm", push_token=ANDROID)
    await start_worker()
    created = (await portal.create_challenge("alice")).body
    await wait_until(lambda: bool(delivered(standins.apns.received.all(), IPHONE)))
    await wait_until(lambda: bool(delivered(standins.fcm.received.all(), ANDROID)))
    (apple,) = delivered(standins.apns.received.all(), IPHONE)
    assert apple.headers["apns-topic"] == TOPIC
    assert apple.headers["apns-push-type"] == "alert"
    assert apple.headers["apns-priority"] == "10"
    assert apple.headers["apns-collapse-id"] == created["id"]
    expires_at = datetime.fromisoformat(created["expires_at"]).timestamp()
    assert int(apple.headers["apns-expiration"]) == int(expires_at)
    assert apple.payload["aps"]["alert"] == {
        "title": "Sign-in request",
        "body": "Salesforce · Berlin, DE",
    }
    assert apple.payload["aps"]["category"] == "PUSHGATE_CHALLENGE"
    assert apple.payload["challenge_id"] == created["id"]
    (google,) = delivered(standins.fcm.received.all(), ANDROID)
    message = google.payload["message"]
    assert message["android"]["priority"] == "high"
    assert message["android"]["collapse_key"] == created["id"]
    assert 55 <= int(message["android"]["ttl"].rstrip("s")) <= 60
    assert message["data"]["challenge_id"] == created["id"]
    assert message["data"]["location"] == "Berlin, DE"
    for _ in range(100):
        view = (await portal.call("GET", f"/v1/challenges/{created['id']}")).body
        if view["push"]["sent_at"]:
            break
        await asyncio.sleep(0.02)
    assert view["push"]["sent_at"] is not None


async def test_unregistered_token_is_invalidated_and_reported(
    portal: Portal,
    settings: Settings,
    tenant: Tenant,
    enroll: Enroll,
    standins: Standins,
    start_worker: Callable[..., Any],
) -> None:
    """APNs 410 Unregistered marks the device's token invalid and emits device.token_invalid."""
    device = await enroll("alice", platform="apns", push_token=IPHONE, app_bundle_id=TOPIC)
    standins.apns.faults.add_invalid_tokens(IPHONE)
    await start_worker()
    await portal.create_challenge("alice")
    await wait_until(lambda: bool(standins.apns.received.for_token(IPHONE)))
    for _ in range(200):
        listed = (await portal.call("GET", "/v1/users/alice/devices")).body["items"]
        if not listed[0]["push_token_valid"]:
            break
        await asyncio.sleep(0.02)
    assert listed[0]["device_id"] == device.device_id
    assert listed[0]["push_token_valid"] is False
    again = await portal.create_challenge("alice", resource="workday")
    assert again.status == 409
    client = aioredis.Redis.from_url(settings.redis_url or "", decode_responses=True)
    try:
        for _ in range(200):
            entries = await client.xrange(keys.tenant_events(tenant.tenant_id))
            types = [fields["type"] for _, fields in entries]
            if "device.token_invalid" in types:
                break
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()
    assert "device.token_invalid" in types


@pytest.mark.parametrize(
    ("status", "reason"), [(429, "TooManyRequests"), (500, "InternalServerError")]
)
async def test_transient_error_is_retried_and_delivered_once(
    portal: Portal,
    enroll: Enroll,
    standins: Standins,
    start_worker: Callable[..., Any],
    status: int,
    reason: str,
) -> None:
    """A 429 or 500 is retried with backoff; the phone gets exactly one delivered push."""
    await enroll("alice", platform="apns", push_token=IPHONE, app_bundle_id=TOPIC)
    standins.apns.faults.fail_token(IPHONE, status, reason, count=2)
    worker = await start_worker()
    await portal.create_challenge("alice")
    await wait_until(lambda: bool(delivered(standins.apns.received.all(), IPHONE)), timeout=15)
    await asyncio.sleep(0.3)
    attempts = standins.apns.received.for_token(IPHONE)
    assert [r.status for r in attempts] == [status, status, 200]
    assert len(delivered(attempts, IPHONE)) == 1
    assert worker.metrics.retries.labels("apns")._value.get() == 2


async def test_challenge_that_ends_during_backoff_is_never_sent(
    portal: Portal,
    enroll: Enroll,
    standins: Standins,
    start_worker: Callable[..., Any],
) -> None:
    """If the challenge ends while a send waits to retry, nothing is sent late."""
    device = await enroll("alice", platform="apns", push_token=IPHONE, app_bundle_id=TOPIC)
    await enroll("alice", platform="none")
    standins.apns.faults.fail_token(IPHONE, 503, "ServiceUnavailable", count=1, retry_after=2)
    await start_worker()
    created = (await portal.create_challenge("alice")).body
    await wait_until(lambda: bool(standins.apns.received.for_token(IPHONE)))
    await portal.call("DELETE", f"/v1/challenges/{created['id']}")
    await asyncio.sleep(2.6)
    attempts = standins.apns.received.for_token(IPHONE)
    challenge_pushes = [
        r for r in attempts if r.payload and r.payload.get("aps", {}).get("category")
    ]
    assert [r.status for r in challenge_pushes] == [503]
    assert device.device_id


async def test_jobs_of_a_dead_worker_are_delivered_by_another(
    settings: Settings,
    portal: Portal,
    enroll: Enroll,
    standins: Standins,
    start_worker: Callable[..., Any],
) -> None:
    """A job read but never acknowledged (the reader died) is reclaimed and delivered."""
    await enroll("alice", platform="apns", push_token=IPHONE, app_bundle_id=TOPIC)
    created = (await portal.create_challenge("alice")).body
    client = aioredis.Redis.from_url(settings.redis_url or "", decode_responses=True)
    try:
        streams = {keys.jobs(s): "0" for s in range(settings.shards)}
        for stream in streams:
            await client.xgroup_create(stream, JOBS_GROUP, id="0", mkstream=True)
        taken = await client.xreadgroup(
            JOBS_GROUP, "crashed-worker", {s: ">" for s in streams}, count=10
        )
        assert taken, "the dead worker took the job"
    finally:
        await client.aclose()
    await start_worker(reclaim_idle_ms=300)
    await wait_until(lambda: bool(delivered(standins.apns.received.all(), IPHONE)), timeout=15)
    (push,) = delivered(standins.apns.received.all(), IPHONE)
    assert push.headers["apns-collapse-id"] == created["id"]


async def test_two_workers_deliver_each_job_once(
    portal: Portal, enroll: Enroll, standins: Standins, start_worker: Callable[..., Any]
) -> None:
    """With two workers in one consumer group, every challenge reaches the phone once."""
    users = [f"user{i}" for i in range(12)]
    for index, user in enumerate(users):
        await enroll(user, platform="apns", push_token=f"{index:02x}" * 32, app_bundle_id=TOPIC)
    await start_worker()
    await start_worker()
    ids = [(await portal.create_challenge(u)).body["id"] for u in users]
    await wait_until(lambda: len(standins.apns.received.delivered()) >= len(ids), timeout=15)
    await asyncio.sleep(0.5)
    collapse_ids = [r.headers["apns-collapse-id"] for r in standins.apns.received.delivered()]
    assert sorted(collapse_ids) == sorted(ids)


async def test_slow_device_does_not_stall_other_sends(
    portal: Portal, enroll: Enroll, standins: Standins, start_worker: Callable[..., Any]
) -> None:
    """A push that hangs is bounded by its timeout while other phones get theirs at once."""
    slow = "5a" * 32
    await enroll("slowpoke", platform="apns", push_token=slow, app_bundle_id=TOPIC)
    await enroll("alice", platform="apns", push_token=IPHONE, app_bundle_id=TOPIC)
    await enroll("alice", platform="fcm", push_token=ANDROID)
    standins.apns.faults.hang_token(slow)
    await start_worker(timeout=3.0)
    await portal.create_challenge("slowpoke")
    await portal.create_challenge("alice")
    await wait_until(lambda: bool(delivered(standins.apns.received.all(), IPHONE)), timeout=2.5)
    await wait_until(lambda: bool(delivered(standins.fcm.received.all(), ANDROID)), timeout=2.5)
    assert not delivered(standins.apns.received.all(), slow)


async def test_answer_on_one_phone_replaces_the_prompt_on_the_other(
    portal: Portal, enroll: Enroll, standins: Standins, start_worker: Callable[..., Any]
) -> None:
    """After the iPhone approves, the Android phone gets a follow-up with the same collapse key."""
    iphone = await enroll("alice", platform="apns", push_token=IPHONE, app_bundle_id=TOPIC)
    await enroll("alice", platform="fcm", push_token=ANDROID)
    await start_worker()
    created = (await portal.create_challenge("alice")).body
    await wait_until(lambda: bool(delivered(standins.fcm.received.all(), ANDROID)))
    await iphone.respond(created["id"], "approve", number=created["number"])
    await wait_until(lambda: len(delivered(standins.fcm.received.all(), ANDROID)) >= 2)
    follow_up = delivered(standins.fcm.received.all(), ANDROID)[-1].payload["message"]
    assert follow_up["android"]["collapse_key"] == created["id"]
    assert len(delivered(standins.apns.received.all(), IPHONE)) == 1


async def test_long_retry_is_not_taken_over_by_a_second_worker(
    portal: Portal, enroll: Enroll, standins: Standins, start_worker: Callable[..., Any]
) -> None:
    """A job retrying longer than the reclaim idle time stays with its worker: one delivery."""
    await enroll("alice", platform="apns", push_token=IPHONE, app_bundle_id=TOPIC)
    standins.apns.faults.fail_token(IPHONE, 503, "ServiceUnavailable", count=1, retry_after=1.5)
    await start_worker(reclaim_idle_ms=300)
    await start_worker(reclaim_idle_ms=300)
    await portal.create_challenge("alice")
    await wait_until(lambda: bool(delivered(standins.apns.received.all(), IPHONE)), timeout=10)
    await asyncio.sleep(1.0)
    challenge_pushes = [
        r for r in standins.apns.received.for_token(IPHONE) if r.payload["aps"].get("category")
    ]
    assert [r.status for r in challenge_pushes] == [503, 200]
