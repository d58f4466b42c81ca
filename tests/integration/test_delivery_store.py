"""Delivery state scripts on the real server: who may attempt a send, and what a record keeps."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from approvals.store import keys
from approvals.store.backend import Backend, connect
from approvals.store.deliveries import JOBS_GROUP, DeliveryStore, Job, Outcome, Phase
from pushgate.settings import Settings
from tests.conftest import TestClock
from tests.integration.conftest import Enroll
from tests.portal import Portal

IPHONE = "c3" * 32
CLAIM_MS = 5_000


@pytest.fixture
async def backend(settings: Settings, clock: TestClock) -> AsyncIterator[Backend]:
    assert settings.redis_url is not None
    opened = connect(settings.redis_url, shards=settings.shards, clock=clock)
    yield opened
    await opened.close()


async def first_job(backend: Backend, shards: int) -> Job:
    """The oldest job of any shard, read by a consumer named ``reader``."""
    for shard in range(shards):
        stream = keys.jobs(shard)
        if not await backend.redis.exists(stream):
            continue
        await backend.redis.xgroup_create(stream, JOBS_GROUP, id="0")
        reply = await backend.redis.xreadgroup(JOBS_GROUP, "reader", {stream: ">"}, count=1)
        if reply:
            entry_id, fields = reply[0][1][0]
            return Job.from_entry(stream, entry_id, fields)
    raise AssertionError("no job")


async def pending_count(backend: Backend, job: Job) -> int:
    return int((await backend.redis.xpending(job.stream, JOBS_GROUP))["pending"])


async def started_job(
    portal: Portal, enroll: Enroll, backend: Backend, settings: Settings
) -> tuple[DeliveryStore, Job, str]:
    device = await enroll("alice", platform="apns", push_token=IPHONE, app_bundle_id="t")
    assert device.device_id is not None
    created = await portal.create_challenge("alice")
    assert created.status == 201
    return DeliveryStore(backend), await first_job(backend, settings.shards), device.device_id


async def test_a_live_attempt_keeps_other_workers_off_the_device(
    portal: Portal, enroll: Enroll, backend: Backend, settings: Settings, clock: TestClock
) -> None:
    """While one worker's attempt is in flight, another worker's begin or retry claims nothing
    for that device; once the claim's time bound passed, the device is free again."""
    store, job, device_id = await started_job(portal, enroll, backend, settings)
    plan = await store.begin_prompt(
        job, owner="a", attempt_ms=CLAIM_MS, min_left_ms=1000, platforms=["apns"]
    )
    assert [r.device_id for r in plan.routes] == [device_id]
    other = await store.begin_prompt(
        job, owner="b", attempt_ms=CLAIM_MS, min_left_ms=1000, platforms=["apns"]
    )
    assert other.routes == ()
    assert 0 < other.wait_ms <= CLAIM_MS  # the rest of the live claim, by the server's clock
    retry = await store.claim_retry(
        job, Phase.PROMPT, device_id, owner="b", attempt_ms=CLAIM_MS, min_left_ms=0
    )
    assert retry == "busy"
    clock.advance(CLAIM_MS / 1000)  # the claim's time bound has passed
    taken = await store.claim_retry(
        job, Phase.PROMPT, device_id, owner="b", attempt_ms=CLAIM_MS, min_left_ms=0
    )
    assert taken == "go"


async def test_an_accepted_prompt_is_never_claimed_again(
    portal: Portal, enroll: Enroll, backend: Backend, settings: Settings
) -> None:
    """After a provider accepted the prompt, a rerun of the job claims nothing and the job's
    last outcome has acknowledged it."""
    store, job, device_id = await started_job(portal, enroll, backend, settings)
    await store.begin_prompt(
        job, owner="a", attempt_ms=CLAIM_MS, min_left_ms=1000, platforms=["apns"]
    )
    await store.settle(job, Phase.PROMPT, device_id, Outcome.ACCEPTED, owner="a", last=True)
    assert await pending_count(backend, job) == 0
    again = await store.begin_prompt(
        job, owner="b", attempt_ms=CLAIM_MS, min_left_ms=1000, platforms=["apns"]
    )
    assert again.result == "done"
    verdict = await store.claim_retry(
        job, Phase.PROMPT, device_id, owner="b", attempt_ms=CLAIM_MS, min_left_ms=0
    )
    assert verdict == "done"


async def test_settling_after_the_record_is_gone_writes_nothing(
    portal: Portal, enroll: Enroll, backend: Backend, settings: Settings
) -> None:
    """An outcome recorded after the challenge's retention ended acknowledges the job but never
    recreates the record (no key without a TTL is left behind)."""
    store, job, device_id = await started_job(portal, enroll, backend, settings)
    shard = backend.user_keys(job.tenant, job.user_id).shard
    record_key = keys.challenge(shard, job.challenge_id)
    await backend.redis.delete(record_key)
    await store.settle(job, Phase.PROMPT, device_id, Outcome.ACCEPTED, owner="a", last=True)
    assert not await backend.redis.exists(record_key)
    assert await pending_count(backend, job) == 0


async def test_a_job_of_an_ended_challenge_is_dropped_and_acknowledged(
    portal: Portal, enroll: Enroll, backend: Backend, settings: Settings
) -> None:
    """Begin on a cancelled challenge sends nothing, tells no in-app channel, and acks."""
    store, job, _ = await started_job(portal, enroll, backend, settings)
    cancelled = await portal.call("DELETE", f"/v1/challenges/{job.challenge_id}")
    assert cancelled.status == 200
    client = aioredis.Redis.from_url(settings.redis_url or "", decode_responses=True)
    try:
        shard = backend.user_keys(job.tenant, job.user_id).shard
        plan = await store.begin_prompt(
            job, owner="a", attempt_ms=CLAIM_MS, min_left_ms=0, platforms=["apns"]
        )
        assert plan.result == "dropped"
        assert await client.hget(keys.challenge(shard, job.challenge_id), "inapp") is None
    finally:
        await client.aclose()
    assert await pending_count(backend, job) == 0
