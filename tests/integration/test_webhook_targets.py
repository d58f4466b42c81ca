"""Webhook targets (SPEC §9): internal addresses are refused at PUT and again at send time."""

from __future__ import annotations

import asyncio
from typing import Any

from approvals.secretbox import SecretBox
from approvals.store.backend import connect
from approvals.store.webhooks import WebhookStore, secret_context
from pusher.worker import Worker
from tests.conftest import TestClock, make_settings
from tests.integration.conftest import Tenant
from tests.integration.totp_flow import start_totp
from tests.integration.webhook_receiver import Receiver, receiver
from tests.portal import Portal

__all__ = ["receiver"]


async def test_internal_webhook_urls_are_refused_at_put(admin: Portal) -> None:
    """Without an allowed network, PUT refuses internal targets in any spelling, naming url."""
    for url in (
        "http://127.0.0.1:6379/",
        "http://localhost/",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://0.0.0.0:22/",
        "http://2130706433:6379/",
        "http://[::ffff:7f00:1]/",
        "http://example.com/\r\nHost: evil",
    ):
        reply = await admin.call("PUT", "/v1/webhooks", {"url": url, "events": ["*"]})
        assert reply.status == 422, (url, reply.body)
        assert reply.body["errors"][0]["field"] == "url", url
    assert (await admin.call("GET", "/v1/webhooks")).status == 404


async def test_worker_refuses_to_connect_to_an_internal_resolved_address(
    admin: Portal,
    portal: Portal,
    receiver: Receiver,
    tenant: Tenant,
    redis_url: str,
    clock: TestClock,
) -> None:
    """A stored URL whose name resolves to loopback is never POSTed to by a worker that allows
    no network; the refusal and its reason are shown on the webhook."""
    port = receiver.url.rsplit(":", 1)[1].split("/", 1)[0]
    settings = make_settings(redis_url)
    backend = connect(redis_url, shards=settings.shards)
    try:
        await WebhookStore(backend).put(
            tenant.tenant_id,
            url=f"http://localhost:{port}/hook",
            events=["*"],
            sealed_secret=SecretBox(settings.secret_key_bytes).seal(
                "whsec_test", context=secret_context(tenant.tenant_id)
            ),
        )
    finally:
        await backend.close()
    worker = Worker(settings, clock=clock, sweep_interval=0.05)
    await worker.start()
    try:
        await start_totp(portal, "alice")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        shown: dict[str, Any] = {}
        while loop.time() < deadline and not shown.get("last_error"):
            shown = (await admin.call("GET", "/v1/webhooks")).body
            await asyncio.sleep(0.05)
    finally:
        await worker.stop(grace=1)
    assert receiver.received == []
    assert shown["queued"] == 1
    assert "refused to connect" in shown["last_error"]["error"]
    assert "loopback" in shown["last_error"]["error"]
