"""A TLS server that speaks HTTP/2 or HTTP/1.1 (by ALPN, else by sniffing the h2 preface)."""

from __future__ import annotations

import asyncio
import itertools
import ssl
from collections.abc import Coroutine, Mapping
from typing import Any

from h2.settings import SettingCodes

from pusher.standins.h1engine import H1Engine
from pusher.standins.h2engine import H2Engine
from pusher.standins.messages import Handler

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class _Connection(asyncio.Protocol):
    def __init__(self, server: StandinServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._engine: H1Engine | H2Engine | None = None
        self._sniffed = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._server.connections.add(self)
        ssl_object = transport.get_extra_info("ssl_object")
        alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
        if alpn == "h2":
            self._engine = self._server.make_h2(transport)
        elif alpn == "http/1.1":
            self._engine = self._server.make_h1(transport)

    def data_received(self, data: bytes) -> None:
        if self._engine is None:
            # No ALPN (aioapns does not ask for it): HTTP/2 with prior knowledge, or HTTP/1.1.
            assert self._transport is not None
            self._sniffed += data
            if H2_PREFACE.startswith(self._sniffed):
                if len(self._sniffed) < len(H2_PREFACE):
                    return
                self._engine = self._server.make_h2(self._transport)
            elif self._sniffed.startswith(H2_PREFACE):
                self._engine = self._server.make_h2(self._transport)
            else:
                self._engine = self._server.make_h1(self._transport)
            data, self._sniffed = self._sniffed, b""
        self._engine.feed(data)

    def eof_received(self) -> bool | None:
        if isinstance(self._engine, H1Engine):
            self._engine.feed(b"")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.connections.discard(self)
        if self._engine is not None:
            self._engine.connection_lost()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


class StandinServer:
    """Serves one handler on one TLS port; ``close()`` ends connections and pending handlers."""

    def __init__(
        self, handler: Handler, *, h2_settings: Mapping[SettingCodes, int] | None = None
    ) -> None:
        self._handler = handler
        self._h2_settings = dict(h2_settings or {})
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections: set[_Connection] = set()
        self._ids = itertools.count(1)
        self._listen: tuple[str, int, ssl.SSLContext] | None = None

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext) -> int:
        """Listen on ``host:port`` (0 picks a free port); return the bound port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), host, port, ssl=ssl_context
        )
        bound = int(self._server.sockets[0].getsockname()[1])
        self._listen = (host, bound, ssl_context)
        return bound

    async def outage(self, seconds: float) -> None:
        """Go down for ``seconds``: stop listening (connections are refused), drop every
        connection and the requests on it, then listen again on the same port."""
        if self._server is None or self._listen is None:
            return
        self._server.close()
        for conn in list(self.connections):
            conn.abort()
        await self._server.wait_closed()
        await asyncio.sleep(seconds)
        host, port, context = self._listen
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _Connection(self), host, port, ssl=context, reuse_address=True
        )

    async def close(self) -> None:
        """Stop listening, drop connections and cancel handlers still running."""
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for _ in range(100):  # aborted transports close their sockets on the next turns
            if not self.connections:
                break
            await asyncio.sleep(0.01)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def make_h2(self, transport: asyncio.Transport) -> H2Engine:
        return H2Engine(transport, self._handler, self.spawn, self._h2_settings, next(self._ids))

    def make_h1(self, transport: asyncio.Transport) -> H1Engine:
        return H1Engine(transport, self._handler, self.spawn, next(self._ids))
