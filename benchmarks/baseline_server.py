"""The baselines, served the way ``pushgate serve`` serves the gateway.

Same runtime: uvloop, ``web.AppRunner(access_log=None)``, a ``TCPSite`` with the same
backlog, structlog configured with the same level and format. Routes:

- ``POST /hello``: the hello-world route (answers a small JSON body, ignores the request body)
- ``POST /hello-redis``: the same plus one redis-py ``SET`` with the gateway's client
  settings (a diagnostic floor: any route that makes one Redis round trip)
- ``POST /v1/challenges``: the create route's floor (P1f): reads and validates the same body
  with the same model and makes one redis-py ``EVALSHA`` of a trivial script with as many
  keys and arguments as the create script takes, through the gateway's client
- ``GET /ws/idle``: a bare websocket handler (prepare, then read until closed)
- ``GET /ws/echo``: a websocket that echoes every text frame

Both websockets ping every 20 s like the gateway's portal websocket.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal

import uvloop
from aiohttp import WSMsgType, web

from approvals.store.backend import Backend, connect
from gateway.bodies import CreateChallenge
from gateway.sockets import PING_SECONDS
from pushgate.logs import configure_logging

HELLO = b'{"hello":"world"}'
BACKEND = web.AppKey("backend", Backend)
TRIVIAL = web.AppKey("trivial", object)
#: what the create script takes (approvals/store/challenges.py, ChallengeStore.create)
CREATE_KEYS, CREATE_ARGS = 10, 1


async def hello(request: web.Request) -> web.Response:
    return web.Response(body=HELLO, content_type="application/json")


async def hello_redis(request: web.Request) -> web.Response:
    await request.app[BACKEND].redis.set("hello", "world")
    return web.Response(body=HELLO, content_type="application/json")


async def floor_create(request: web.Request) -> web.Response:
    body = CreateChallenge.model_validate_json(await request.read())
    keys = [f"{{pg:0}}:floor:{i}" for i in range(CREATE_KEYS)]
    args = [body.user_id, *(str(i) for i in range(CREATE_ARGS - 1))]
    await request.app[TRIVIAL](keys=keys, args=args)  # type: ignore[operator]
    return web.Response(body=HELLO, content_type="application/json", status=201)


async def idle(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=PING_SECONDS, max_msg_size=4096)
    await ws.prepare(request)
    async for _ in ws:
        pass
    return ws


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=PING_SECONDS, max_msg_size=4096)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str(msg.data)
    return ws


async def serve(port: int, redis_url: str) -> None:
    app = web.Application()
    app[BACKEND] = connect(redis_url)
    app[TRIVIAL] = app[BACKEND].redis.register_script("return 1")
    app.router.add_post("/hello", hello)
    app.router.add_post("/v1/challenges", floor_create)
    app.router.add_post("/hello-redis", hello_redis)
    app.router.add_get("/ws/idle", idle)
    app.router.add_get("/ws/echo", echo)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=2048).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    await app[BACKEND].close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    configure_logging(os.environ.get("PUSHGATE_LOG_LEVEL", "info"), "json")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.port, args.redis_url))


if __name__ == "__main__":
    main()
