"""A webhook receiver on 127.0.0.1 for tests: checks signatures, fails on request."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.conftest import base_url


@dataclass
class Receiver:
    """A webhook endpoint on 127.0.0.1 that checks signatures and fails on request."""

    url: str = ""
    signing_secret: str = ""
    failures_left: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)

    def signature_valid(self, header: str, body: bytes) -> bool:
        parts = dict(part.split("=", 1) for part in header.split(","))
        mac = hmac.new(self.signing_secret.encode(), f"{parts['t']}.".encode() + body, "sha256")
        return parts["t"].isdigit() and hmac.compare_digest(mac.hexdigest(), parts["v1"])

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        event = json.loads(body)
        self.received.append(
            {
                "event": event,
                "signed": self.signature_valid(request.headers["Pushgate-Signature"], body),
                "event_id_header": request.headers["Pushgate-Event-Id"],
            }
        )
        if self.failures_left > 0:
            self.failures_left -= 1
            return web.Response(status=500)
        return web.Response(status=200)

    async def wait_for(self, count: int, timeout: float = 10) -> None:
        """Until ``count`` requests arrived."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.received) < count and loop.time() < deadline:
            await asyncio.sleep(0.05)
        assert len(self.received) >= count, self.received


@pytest.fixture
async def receiver(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> Receiver:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    server = await aiohttp_server(app)
    hook.url = base_url(server) + "/hook"
    return hook
