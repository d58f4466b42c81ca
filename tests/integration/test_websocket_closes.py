"""Portal websockets end with a completed close handshake (1000) after every kind of result,
seen by two client libraries, against real ``pushgate serve`` and ``pushgate worker``."""

from __future__ import annotations

import asyncio
import functools
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import websockets
from websockets.exceptions import ConnectionClosed

from pushgate.devicekit.client import DeviceClient
from pushgate.embedded import free_port
from tests.integration.processes import (
    base_env,
    cli_json,
    enroll_devices,
    processes,
    start_gateway,
    start_worker,
)
from tests.portal import Portal

OUTCOMES = {"approve": "approved", "deny": "denied", "cancel": "cancelled", "expire": "expired"}
PER_OUTCOME = 50  # per client library: 200 closes each
USERS = 40
#: (close code, status of the last message, type of the last message)
Seen = tuple[int | None, str | None, str | None]
#: what a portal does with the result before it reads on (records it, answers its user)
Handle = Callable[[], Awaitable[object]]
Waiter = Callable[[str, asyncio.Event, Handle], Awaitable[Seen]]


def _last(messages: list[dict[str, object]]) -> tuple[str | None, str | None]:
    if not messages:
        return None, None
    last = messages[-1]
    challenge = last.get("challenge")
    status = challenge.get("status") if isinstance(challenge, dict) else None
    return (str(status) if status else None), str(last.get("type"))


def aiohttp_waiter(session: aiohttp.ClientSession) -> Waiter:
    """Wait as the README's portal example does, with aiohttp's client."""

    async def wait(url: str, subscribed: asyncio.Event, handle: Handle) -> Seen:
        messages: list[dict[str, object]] = []
        async with session.ws_connect(url) as ws:
            messages.append(await ws.receive_json(timeout=10))
            subscribed.set()
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    messages.append(json.loads(message.data))
                    if messages[-1]["type"] == "result":
                        await handle()
        return (ws.close_code, *_last(messages))

    return wait


async def websockets_waiter(url: str, subscribed: asyncio.Event, handle: Handle) -> Seen:
    """Wait with the ``websockets`` library."""
    messages: list[dict[str, object]] = []
    async with websockets.connect(url, open_timeout=10, close_timeout=10) as ws:
        messages.append(json.loads(await ws.recv()))
        subscribed.set()
        try:
            async for raw in ws:
                messages.append(json.loads(raw))
                if messages[-1]["type"] == "result":
                    await handle()
        except ConnectionClosed:
            pass
    return (ws.close_code, *_last(messages))


async def _end(
    portal: Portal, device: DeviceClient, lock: asyncio.Lock, cid: str, how: str, number: str | None
) -> None:
    if how == "cancel":
        assert (await portal.call("DELETE", f"/v1/challenges/{cid}")).status == 200
    elif how in ("approve", "deny"):
        async with lock:  # one device signs one answer at a time: its sign count must grow
            await device.respond(cid, how, number=number if how == "approve" else None)  # type: ignore[arg-type]


async def test_result_websockets_close_with_1000_for_aiohttp_and_websockets_clients(
    redis_url: str, tmp_path: Path
) -> None:
    """200 of 200 portal websockets per client library (aiohttp, websockets) get their result
    and then a clean close 1000 after approve, deny, cancel and expiry, also when the portal
    confirms the result with a GET before it reads on: never 1006."""
    port = free_port()
    origin = f"http://localhost:{port}"
    env = base_env(redis_url, public_url=origin, log_level="warning")
    created_tenant = cli_json(env, tmp_path, "tenant", "create", "acme")
    unlimited = aiohttp.TCPConnector(limit=0)  # 200 open websockets must not starve the API calls
    async with (
        aiohttp.ClientSession() as session,
        aiohttp.ClientSession(connector=unlimited) as wss,
    ):
        with processes() as started:
            await start_gateway(started, session, env, tmp_path, port)
            await start_worker(started, session, env, tmp_path, "worker")
            portal = Portal(session, f"http://127.0.0.1:{port}", created_tenant["admin_key"])
            patched = await portal.call(
                "PATCH",
                "/v1/policy",
                {
                    "push_ttl_seconds": 15,
                    "dedupe_seconds": 0,
                    "max_pushes_per_window": 100,
                    "max_unanswered_pushes": 100,
                },
            )
            assert patched.status == 200, patched.body
            devices = await enroll_devices(portal, origin, [f"user{i}" for i in range(USERS)])
            locks = [asyncio.Lock() for _ in devices]
            clients: dict[str, Waiter] = {
                "aiohttp": aiohttp_waiter(wss),
                "websockets": websockets_waiter,
            }

            async def one(client: str, how: str, index: int) -> tuple[str, str, Seen]:
                user = index % USERS
                created = await portal.create_challenge(f"user{user}", resource=f"r{index}-{how}")
                assert created.status == 201, created.body
                cid = created.body["id"]
                subscribed = asyncio.Event()
                url = portal.ws_url(cid, created.body["watch_token"]).replace("http", "ws", 1)
                confirm = functools.partial(portal.call, "GET", f"/v1/challenges/{cid}")
                waiting = asyncio.create_task(clients[client](url, subscribed, confirm))
                subscribing = asyncio.create_task(subscribed.wait())
                await asyncio.wait(
                    {waiting, subscribing}, timeout=10, return_when=asyncio.FIRST_COMPLETED
                )
                subscribing.cancel()
                if waiting.done():
                    waiting.result()  # a failed connection fails the test with its reason
                await _end(portal, devices[user], locks[user], cid, how, created.body["number"])
                return client, how, await waiting

            async with asyncio.timeout(90):
                seen = await asyncio.gather(
                    *(
                        one(client, how, i)
                        for client in clients
                        for how in OUTCOMES
                        for i in range(PER_OUTCOME)
                    )
                )
    codes = Counter((client, code) for client, _, (code, _, _) in seen)
    assert codes == {(client, 1000): 4 * PER_OUTCOME for client in clients}, codes
    wrong = [
        (client, how, status, kind)
        for client, how, (_, status, kind) in seen
        if (status, kind) != (OUTCOMES[how], "result")
    ]
    assert wrong == []
