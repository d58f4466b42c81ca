"""The HTTP listener with connection timeouts (slow or silent clients cannot hold sockets).

aiohttp closes a kept-alive connection that sends nothing for ``keepalive_timeout``; a
connection that opens and then says nothing, or trickles the bytes of its request head,
is closed here once ``request_timeout`` passes without a complete request head (measured
from the moment the connection opens, or from the first byte of its next request on a
kept-alive connection). Request bodies are bounded by the gateway itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler


class RequestHeadTimeout(RequestHandler):
    """aiohttp's request handler that closes a connection whose request head is late."""

    def __init__(self, manager: web.Server, *, request_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._head_timeout = request_timeout
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._awaiting_head():
            self._disarm()
        elif self._head_timer is None:
            self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _awaiting_head(self) -> bool:
        """True while the connection waits for (the rest of) a request head."""
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    def _arm(self) -> None:
        self._disarm()
        self._head_timer = self._loop.call_later(self._head_timeout, self._on_head_timeout)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _on_head_timeout(self) -> None:
        self._head_timer = None
        if self._awaiting_head() or self._request_count == 0:
            self.force_close()


class GuardedTCPSite(web.TCPSite):
    """A TCP site whose connections get :class:`RequestHeadTimeout` handlers."""

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        *,
        request_timeout: float,
        keepalive_timeout: float,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, host, port, backlog=backlog)
        self._handler_options: dict[str, Any] = {
            "request_timeout": request_timeout,
            "keepalive_timeout": keepalive_timeout,
            "access_log": None,
        }

    async def start(self) -> None:
        """Listen, creating one guarded handler per connection."""
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None

        def handler() -> RequestHandler:
            return RequestHeadTimeout(server, loop=loop, **self._handler_options)

        self._server = await loop.create_server(
            handler, self._host, self._port, backlog=self._backlog
        )
