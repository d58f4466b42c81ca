"""HTTP timeouts on a real ``pushgate serve``: silent, trickling and idle kept-alive
connections are closed within their bounds while ``/healthz`` keeps answering."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import aiohttp

from pushgate.embedded import free_port
from tests.integration.processes import base_env, cli_json, processes, start_gateway

REQUEST_TIMEOUT = 2.0
KEEPALIVE_TIMEOUT = 3.0
SILENT, TRICKLING, KEPT_ALIVE = 500, 400, 100
MARGIN_SECONDS = 5.0  # scheduling slack on a shared machine; the bound itself is the setting


async def _closed(reader: asyncio.StreamReader) -> None:
    """Until the server closes the connection (EOF or reset)."""
    try:
        while await reader.read(4096):
            pass
    except ConnectionError:
        pass


async def _silent(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await _closed(reader)
    writer.close()
    return "silent"


async def _trickling(port: int) -> str:
    """Sends a request head one header byte every 0.2 s, never finishing it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
    closing = asyncio.create_task(_closed(reader))
    for _ in range(200):  # bounded: 40 s at most, far past the bound
        if closing.done():
            break
        try:
            writer.write(b"a")
            await writer.drain()
        except ConnectionError:
            break
        await asyncio.wait({closing}, timeout=0.2)
    await closing
    writer.close()
    return "trickling"


async def _kept_alive(port: int) -> str:
    """One complete request and its answer, then nothing on the kept-alive connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    status = await reader.readline()
    assert status.startswith(b"HTTP/1.1 200"), status
    await _closed(reader)
    writer.close()
    return "kept-alive"


async def test_silent_trickling_and_idle_connections_are_closed_while_healthz_answers(
    redis_url: str, tmp_path: Path
) -> None:
    """1,000 connections (500 silent, 400 trickling a request head, 100 idle after a request)
    are all closed by the server within the request and keep-alive timeouts, and /healthz
    answers 200 all the while."""
    port = free_port()
    env = base_env(
        redis_url,
        http_request_timeout_seconds=REQUEST_TIMEOUT,
        http_keepalive_timeout_seconds=KEEPALIVE_TIMEOUT,
        log_level="warning",
    )
    async with aiohttp.ClientSession() as session:
        with processes() as started:
            await start_gateway(started, session, env, tmp_path, port)
            loop = asyncio.get_running_loop()
            opened_at = loop.time()
            clients = [
                *(asyncio.create_task(_silent(port)) for _ in range(SILENT)),
                *(asyncio.create_task(_trickling(port)) for _ in range(TRICKLING)),
                *(asyncio.create_task(_kept_alive(port)) for _ in range(KEPT_ALIVE)),
            ]
            health: Counter[int] = Counter()
            bound = opened_at + KEEPALIVE_TIMEOUT + MARGIN_SECONDS
            while loop.time() < bound and not all(c.done() for c in clients):
                async with session.get(
                    f"http://127.0.0.1:{port}/healthz", timeout=aiohttp.ClientTimeout(total=5)
                ) as reply:
                    health[reply.status] += 1
                await asyncio.wait(clients, timeout=0.1, return_when=asyncio.ALL_COMPLETED)
            still_open = sum(not c.done() for c in clients)
            for client in clients:
                client.cancel()
            finished = await asyncio.gather(*clients, return_exceptions=True)
    assert still_open == 0, f"{still_open} of {len(clients)} connections still open"
    kinds = Counter(f for f in finished if isinstance(f, str))
    assert kinds == {"silent": SILENT, "trickling": TRICKLING, "kept-alive": KEPT_ALIVE}
    assert set(health) == {200} and health[200] >= 1


async def test_a_body_that_never_arrives_is_a_408_and_the_connection_ends(
    redis_url: str, tmp_path: Path
) -> None:
    """A request whose body stops short gets 408 problem+json once the request timeout passes."""
    port = free_port()
    env = base_env(redis_url, http_request_timeout_seconds=REQUEST_TIMEOUT, log_level="warning")
    key = cli_json(env, tmp_path, "tenant", "create", "acme")["admin_key"]
    async with aiohttp.ClientSession() as session:
        with processes() as started:
            await start_gateway(started, session, env, tmp_path, port)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"PUT /v1/users/alice HTTP/1.1\r\nHost: localhost\r\n"
                b"Authorization: Bearer " + key.encode() + b"\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
            )
            async with asyncio.timeout(REQUEST_TIMEOUT + MARGIN_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                body = await reader.readexactly(length)
            writer.close()
    assert head.startswith(b"HTTP/1.1 408"), head
    assert b"application/problem+json" in head
    assert b'"code": "invalid_request"' in body
