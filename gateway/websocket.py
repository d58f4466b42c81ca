"""A server websocket whose close always completes the close handshake.

aiohttp's ``WebSocketResponse.close()`` closes the TCP connection at once, without waiting for
the client's close frame, when another task is inside ``receive()`` at that moment. The
client then fails to send its reply and reports an abnormal closure (1006) instead of the
code it was sent. Here one background task reads client frames (pings, the client's own
close, bad frames) and every ``close()`` stops that reader first, then waits for the
client's reply; a second ``close()`` waits for the one in progress, so a handler never
returns (which drops the connection) in the middle of a handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from aiohttp import WSCloseCode, WSMsgType, web


class CleanClosingWebSocket(web.WebSocketResponse):
    """``WebSocketResponse`` with a background frame reader and a handshake-completing close."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._frames: asyncio.Task[None] | None = None
        self._closed_fully: asyncio.Future[None] | None = None

    def read_in_background(self, on_end: Callable[[], None]) -> None:
        """Start reading client frames; ``on_end`` runs when the client goes away or closes."""
        self._frames = asyncio.create_task(self._read_frames())
        self._frames.add_done_callback(lambda _: on_end())

    @property
    def client_gone(self) -> bool:
        """True once the background reader ended (client closed, vanished or misbehaved)."""
        return self._frames is not None and self._frames.done()

    async def _read_frames(self) -> None:
        async for message in self:
            if message.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break

    async def _stop_reading(self) -> None:
        frames = self._frames
        if frames is None or frames.done() or frames is asyncio.current_task():
            return
        frames.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await frames

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        """Send a close frame and wait for the client's reply before the connection closes."""
        if self._closed_fully is not None:
            await asyncio.shield(self._closed_fully)
            return False
        self._closed_fully = asyncio.get_running_loop().create_future()
        try:
            await self._stop_reading()
            closed = await super().close(code=code, message=message, drain=drain)
        finally:
            self._closed_fully.set_result(None)
        return closed
