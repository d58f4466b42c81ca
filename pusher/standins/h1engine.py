"""Server side of one HTTP/1.1 connection, written on ``h11``; one request at a time.

Clients that negotiate ``http/1.1`` (``requests`` fetching an OAuth token, a control-API
call from another process) land here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11

from pusher.standins.h2engine import Spawn
from pusher.standins.messages import Handler, Request, Response

log = logging.getLogger(__name__)


class H1Engine:
    """Feeds bytes from one connection through an ``h11`` server state machine."""

    http_version = "1.1"

    def __init__(
        self, transport: asyncio.Transport, handler: Handler, spawn: Spawn, connection_id: int = 0
    ) -> None:
        self.connection_id = connection_id
        self.notes: dict[str, Any] = {}
        self._transport = transport
        self._handler = handler
        self._spawn = spawn
        self._conn = h11.Connection(h11.SERVER)
        self._head: h11.Request | None = None
        self._body = bytearray()
        self._task: asyncio.Task[None] | None = None

    def set_max_concurrent_streams(self, value: int) -> None:
        """HTTP/1.1 has no streams: nothing to advertise."""

    def feed(self, data: bytes) -> None:
        """Process bytes received from the peer (``b""`` at end of input)."""
        self._conn.receive_data(data)
        self._process()

    def connection_lost(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _process(self) -> None:
        while self._task is None:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError:
                self._reject()
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self._head, self._body = event, bytearray()
            elif isinstance(event, h11.Data):
                self._body.extend(event.data)
            elif isinstance(event, h11.EndOfMessage) and self._head is not None:
                head = self._head
                request = Request(
                    method=head.method.decode(),
                    path=head.target.decode(),
                    headers=tuple((k.decode().lower(), v.decode()) for k, v in head.headers),
                    body=bytes(self._body),
                    connection=self,
                )
                self._task = self._spawn(self._answer(request))
            elif isinstance(event, h11.ConnectionClosed):
                self._transport.close()
                return

    async def _answer(self, request: Request) -> None:
        try:
            response = await self._handler(request)
        except Exception:
            log.exception("stand-in handler failed for %s %s", request.method, request.path)
            response = Response(500)
        if self._transport.is_closing():
            return
        headers = [*response.headers, ("content-length", str(len(response.body)))]
        self._write(h11.Response(status_code=response.status, headers=headers))
        if response.body:
            self._write(h11.Data(data=response.body))
        self._write(h11.EndOfMessage())
        self._task = None
        if self._conn.our_state is h11.MUST_CLOSE:
            self._transport.close()
            return
        self._conn.start_next_cycle()
        self._process()

    def _reject(self) -> None:
        if self._conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            self._write(h11.Response(status_code=400, headers=[("content-length", "0")]))
            self._write(h11.EndOfMessage())
        self._transport.close()

    def _write(self, event: h11.Event) -> None:
        data = self._conn.send(event)
        if data:
            self._transport.write(data)
