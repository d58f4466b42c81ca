"""Server side of one HTTP/2 connection, written directly on ``h2``.

Each request runs its handler in its own task, so a slow or never-answered stream does not
hold up the others. Request bodies are acknowledged as they arrive (flow control) and
response bodies are sent as the peer's windows allow.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    RequestReceived,
    StreamEnded,
    StreamReset,
    WindowUpdated,
)
from h2.exceptions import ProtocolError, StreamClosedError
from h2.settings import SettingCodes, Settings

from pusher.standins.messages import Handler, Request, Response

log = logging.getLogger(__name__)

Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]
MAX_HEADER_LIST_SIZE = 65536


class H2Engine:
    """Feeds bytes from one TLS connection through an ``h2`` server state machine."""

    http_version = "2"

    def __init__(
        self,
        transport: asyncio.Transport,
        handler: Handler,
        spawn: Spawn,
        settings: Mapping[SettingCodes, int] | None = None,
        connection_id: int = 0,
    ) -> None:
        self.connection_id = connection_id
        self.notes: dict[str, Any] = {}
        self._transport = transport
        self._handler = handler
        self._spawn = spawn
        self._conn = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        initial = {
            SettingCodes.MAX_CONCURRENT_STREAMS: 100,
            SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST_SIZE,
            **(settings or {}),
        }
        self._conn.local_settings = Settings(client=False, initial_values=initial)
        self._partial: dict[int, tuple[list[tuple[str, str]], bytearray]] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._window = asyncio.Event()
        self._conn.initiate_connection()
        self._flush()

    def set_max_concurrent_streams(self, value: int) -> None:
        """Advertise a new MAX_CONCURRENT_STREAMS in a SETTINGS frame."""
        self._conn.update_settings({SettingCodes.MAX_CONCURRENT_STREAMS: value})
        self._flush()

    def feed(self, data: bytes) -> None:
        """Process bytes received from the peer."""
        try:
            events = self._conn.receive_data(data)
        except ProtocolError as exc:
            # Includes TooManyStreamsError: a peer that opened more streams than advertised.
            log.info("h2 protocol error from peer: %s", exc)
            code = getattr(exc, "error_code", None) or ErrorCodes.PROTOCOL_ERROR
            self._conn.close_connection(error_code=code)
            self._flush()
            self._transport.close()
            return
        for event in events:
            if isinstance(event, RequestReceived) and event.stream_id is not None:
                headers = [(str(k), str(v)) for k, v in event.headers or ()]
                self._partial[event.stream_id] = (headers, bytearray())
            elif isinstance(event, DataReceived) and event.stream_id is not None:
                entry = self._partial.get(event.stream_id)
                if entry is not None and event.data:
                    entry[1].extend(event.data)
                self._conn.acknowledge_received_data(
                    event.flow_controlled_length or 0, event.stream_id
                )
            elif isinstance(event, StreamEnded) and event.stream_id is not None:
                self._start(event.stream_id)
            elif isinstance(event, StreamReset) and event.stream_id is not None:
                self._partial.pop(event.stream_id, None)
                task = self._tasks.pop(event.stream_id, None)
                if task is not None:
                    task.cancel()
            elif isinstance(event, WindowUpdated | RemoteSettingsChanged):
                self._window.set()
            elif isinstance(event, ConnectionTerminated):
                self._transport.close()
        self._flush()

    def connection_lost(self) -> None:
        """Cancel every handler still running for this connection."""
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
        self._window.set()

    def _start(self, stream_id: int) -> None:
        entry = self._partial.pop(stream_id, None)
        if entry is None:
            return
        headers, body = entry
        pseudo = dict(h for h in headers if h[0].startswith(":"))
        request = Request(
            method=pseudo.get(":method", ""),
            path=pseudo.get(":path", ""),
            headers=tuple(headers),
            body=bytes(body),
            connection=self,
        )
        self._tasks[stream_id] = self._spawn(self._answer(stream_id, request))

    async def _answer(self, stream_id: int, request: Request) -> None:
        try:
            response = await self._handler(request)
        except Exception:
            log.exception("stand-in handler failed for %s %s", request.method, request.path)
            response = Response(500)
        try:
            await self._send(stream_id, response)
        except StreamClosedError:
            pass
        finally:
            self._tasks.pop(stream_id, None)

    async def _send(self, stream_id: int, response: Response) -> None:
        body = response.body
        headers = [(":status", str(response.status)), *response.headers]
        headers.append(("content-length", str(len(body))))
        self._conn.send_headers(stream_id, headers, end_stream=not body)
        offset = 0
        while offset < len(body):
            if self._transport.is_closing():
                return
            window = self._conn.local_flow_control_window(stream_id)
            size = min(window, self._conn.max_outbound_frame_size, len(body) - offset)
            if size <= 0:
                self._window.clear()
                self._flush()
                await self._window.wait()
                continue
            chunk = body[offset : offset + size]
            offset += size
            self._conn.send_data(stream_id, chunk, end_stream=offset >= len(body))
        self._flush()

    def _flush(self) -> None:
        data = self._conn.data_to_send()
        if data and not self._transport.is_closing():
            self._transport.write(data)
