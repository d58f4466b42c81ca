"""The audit trail (SPEC §9): the paged event list and signed webhook deliveries."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis

from approvals.store import keys
from pusher.worker import RELAY_GROUP, Worker
from pushgate.settings import Settings
from tests.conftest import TestClock, make_settings
from tests.integration.audit import all_events, settled_events, wait_for_events
from tests.integration.conftest import Enroll, Tenant, make_tenant
from tests.integration.totp_flow import active_totp, start_totp
from tests.integration.webhook_receiver import Receiver, receiver
from tests.portal import Portal

__all__ = ["receiver"]  # the fixture


@pytest.fixture
def settings(redis_url: str) -> Settings:
    """The receivers listen on loopback, which an operator must allow on purpose."""
    return make_settings(redis_url, webhook_allow_networks="127.0.0.0/8")


class Workers:
    """Workers on the injected clock that a test starts and stops; the rest stop at the end."""

    def __init__(self, settings: Settings, clock: TestClock) -> None:
        self.settings = settings
        self.clock = clock
        self.running: list[Worker] = []

    async def start(self) -> Worker:
        worker = Worker(self.settings, clock=self.clock, sweep_interval=0.05)
        await worker.start()
        self.running.append(worker)
        return worker

    async def stop(self, worker: Worker) -> None:
        self.running.remove(worker)
        await worker.stop(grace=1)


@pytest.fixture
async def workers(settings: Settings, clock: TestClock) -> AsyncIterator[Workers]:
    started = Workers(settings, clock)
    yield started
    for worker in list(started.running):
        await started.stop(worker)


async def _set_webhook(admin: Portal, receiver: Receiver, events: list[str]) -> None:
    reply = await admin.call("PUT", "/v1/webhooks", {"url": receiver.url, "events": events})
    assert reply.status == 201, reply.body
    assert reply.body["secret"].startswith("whsec_")
    receiver.signing_secret = reply.body["secret"]


async def test_events_are_listed_in_pages_after_an_id(
    portal: Portal, admin: Portal, clock: TestClock, worker: Worker
) -> None:
    """GET /v1/events pages with limit and next, strictly after the given id, in order."""
    await active_totp(portal, "alice", clock)
    await portal.call("POST", "/v1/users/alice/totp/verify", {"code": "000000"})
    await wait_for_events(admin, "totp.failed")
    first = (await admin.call("GET", "/v1/events?limit=2")).body
    assert [e["type"] for e in first["items"]] == ["totp.enrolled", "totp.confirmed"]
    assert first["next"] == first["items"][-1]["id"]
    rest = (await admin.call("GET", f"/v1/events?after={first['next']}&limit=2")).body
    assert [e["type"] for e in rest["items"]] == ["totp.failed"]
    assert rest["next"] is None
    item = rest["items"][0]
    assert set(item) == {"id", "type", "at", "tenant", "user_id", "data"}
    assert item["at"].endswith("Z")
    assert item["data"]["reason"] in ("invalid", "malformed")


async def test_event_list_checks_its_query_and_its_key(
    portal: Portal, admin: Portal, settings: Settings, session: aiohttp.ClientSession
) -> None:
    """Bad after/limit are 422 naming the field; portal keys get 403; tenants see only theirs."""
    for query, name in (("after=abc", "after"), ("limit=0", "limit"), ("limit=1001", "limit")):
        reply = await admin.call("GET", f"/v1/events?{query}")
        assert (reply.status, reply.body["errors"][0]["field"]) == (422, name)
    assert (await portal.call("GET", "/v1/events")).status == 403
    other = await make_tenant(settings, "other")
    other_admin = Portal(session, admin.base_url, other.admin_key)
    await start_totp(portal, "alice")
    assert (await other_admin.call("GET", "/v1/events")).body == {"items": [], "next": None}


async def test_webhook_config_is_validated_and_hides_its_secret(
    admin: Portal, portal: Portal
) -> None:
    """PUT checks url and event types; GET never shows the secret; DELETE removes it."""
    bad = [
        ({"url": "ftp://example.com/x", "events": ["*"]}, "url"),
        ({"url": "https://user:pw@example.com/x", "events": ["*"]}, "url"),
        ({"url": "example.com/x", "events": ["*"]}, "url"),
        ({"url": "https://example.com/x", "events": ["totp.exploded"]}, "events"),
        ({"url": "https://example.com/x", "events": []}, "events"),
    ]
    for body, name in bad:
        reply = await admin.call("PUT", "/v1/webhooks", body)
        assert (reply.status, reply.body["errors"][0]["field"]) == (422, name), body
    good = {"url": "https://example.com/hook", "events": ["user.locked", "user.locked"]}
    assert (await portal.call("PUT", "/v1/webhooks", good)).status == 403
    created = await admin.call("PUT", "/v1/webhooks", good)
    assert (created.status, created.body["events"]) == (201, ["user.locked"])
    replaced = await admin.call("PUT", "/v1/webhooks", good)
    assert replaced.status == 200
    assert replaced.body["secret"] != created.body["secret"]
    shown = (await admin.call("GET", "/v1/webhooks")).body
    assert "secret" not in shown
    assert shown["url"] == good["url"]
    assert (await admin.call("DELETE", "/v1/webhooks")).status == 204
    assert (await admin.call("GET", "/v1/webhooks")).status == 404
    assert (await admin.call("DELETE", "/v1/webhooks")).status == 404


async def test_webhook_is_signed_and_retried_after_a_500(
    portal: Portal,
    admin: Portal,
    clock: TestClock,
    receiver: Receiver,
    worker: Worker,
    tenant: Tenant,
) -> None:
    """The first POST gets 500; after the backoff the same event comes again, signed, and is
    accepted; events of other types are not sent."""
    await _set_webhook(admin, receiver, ["totp.enrolled"])
    receiver.failures_left = 1
    await start_totp(portal, "alice")
    await admin.call("DELETE", "/v1/users/alice/totp")
    await receiver.wait_for(1)
    clock.advance(10)
    await receiver.wait_for(2)
    first, second = receiver.received[:2]
    assert first["event"] == second["event"]
    assert first["signed"] and second["signed"]
    event = second["event"]
    assert event["type"] == "totp.enrolled"
    assert second["event_id_header"] == event["id"]
    assert (event["user_id"], event["tenant"]) == ("alice", tenant.tenant_id)
    listed = [e for e in await all_events(admin) if e["id"] == event["id"]]
    assert listed == [event]
    await settled_events(admin)
    assert [r["event"]["type"] for r in receiver.received] == ["totp.enrolled"] * 2
    assert (await admin.call("GET", "/v1/webhooks")).body["queued"] == 0


async def test_a_restarted_worker_continues_delivery(
    portal: Portal,
    admin: Portal,
    clock: TestClock,
    receiver: Receiver,
    workers: Workers,
) -> None:
    """A failed delivery and an event queued while no worker runs both arrive after restart."""
    first_worker = await workers.start()
    await _set_webhook(admin, receiver, ["*"])
    receiver.failures_left = 1
    await start_totp(portal, "alice")
    await receiver.wait_for(1)
    await workers.stop(first_worker)
    await start_totp(portal, "bob")
    clock.advance(120)
    await workers.start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while loop.time() < deadline:
        accepted = {r["event"]["user_id"] for r in receiver.received[1:]}
        if accepted == {"alice", "bob"}:
            break
        await asyncio.sleep(0.05)
    assert {r["event"]["user_id"] for r in receiver.received[1:]} == {"alice", "bob"}
    assert all(r["signed"] for r in receiver.received)


async def test_retries_stop_after_24_hours(
    portal: Portal, admin: Portal, clock: TestClock, receiver: Receiver, worker: Worker
) -> None:
    """An endpoint that always fails is tried until 24 h have passed, then the event is dropped."""
    await _set_webhook(admin, receiver, ["totp.enrolled"])
    receiver.failures_left = 10**6
    await start_totp(portal, "alice")
    await receiver.wait_for(1)
    clock.advance(25 * 3600)
    await receiver.wait_for(2)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while (await admin.call("GET", "/v1/webhooks")).body["queued"] and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert (await admin.call("GET", "/v1/webhooks")).body["queued"] == 0


async def test_events_a_dead_worker_read_are_relayed_once_by_another(
    settings: Settings, clock: TestClock, admin: Portal, enroll: Enroll
) -> None:
    """Audit events read from the outbox by a worker that died before relaying them are taken
    over once they are idle for the reclaim time and reach the tenant's stream exactly once."""
    await enroll("alice")
    await admin.create_challenge("alice")
    client = aioredis.Redis.from_url(settings.redis_url or "", decode_responses=True)
    try:
        taken = 0
        for shard in range(settings.shards):
            stream = keys.outbox(shard)
            if await client.exists(stream):
                await client.xgroup_create(stream, RELAY_GROUP, id="0")
                reply = await client.xreadgroup(RELAY_GROUP, "crashed", {stream: ">"}, count=100)
                taken += sum(len(entries) for _, entries in reply)
    finally:
        await client.aclose()
    assert taken == 2  # device.enrolled, challenge.created
    worker = Worker(settings, clock=clock, reclaim_idle_ms=300, sweep_interval=0.1)
    await worker.start()
    try:
        events = await wait_for_events(admin, "challenge.created")
        settled = await settled_events(admin)
    finally:
        await worker.stop(grace=2)
    assert len(events) == 1
    kinds = sorted(e["type"] for e in settled)  # push_sent: the new worker delivered the job
    assert kinds == ["challenge.created", "challenge.push_sent", "device.enrolled"]
