"""Server websockets: the one open/relay/close cycle of both websocket routes.

A websocket route (the portal's challenge socket, the device's in-app channel) is built by
:func:`websocket_route` from three steps of its own: ``authorize`` (checks, and the pub/sub
channel to follow), ``read`` (the first read, after subscribing and before the upgrade, so no
message in between is lost and a failed read still answers 503) and ``relay`` (the snapshot,
then the channel's messages). The cycle around them is the same for both: refused while the
replica drains, registered for the 1012 close on shutdown, counted in
``pushgate_open_websockets``, closed with 1013 when Redis fails, and always closed through
:class:`CleanClosingWebSocket`.

The relay runs directly inside the route's handler frame, and the end of the client's frame
reader arrives through the waiter's own inbox (``CLIENT_GONE``): an idle socket waits on one
``inbox.get()``, with no task or object of its own beyond the frame reader.

aiohttp's ``WebSocketResponse.close()`` closes the TCP connection at once, without waiting for
the client's close frame, when another task is inside ``receive()`` at that moment. The
client then fails to send its reply and reports an abnormal closure (1006) instead of the
code it was sent. So one background task reads client frames (pings, the client's own
close, bad frames) and every ``close()`` stops that reader first, then waits for the
client's reply; a second ``close()`` waits for the one in progress, so a handler never
returns (which drops the connection) in the middle of a handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import WSCloseCode, WSMsgType, web
from redis.exceptions import RedisError

from gateway.problems import ProblemError
from gateway.services import Services, services
from gateway.waiters import Inbox
from pushgate.logs import get_logger

log = get_logger("gateway.sockets")

PING_SECONDS = 20.0
MAX_MESSAGE_BYTES = 4096
#: queued by the client reader when the client side goes away (never sent by Redis)
CLIENT_GONE = "\x00client-gone"

Authorized = TypeVar("Authorized")
First = TypeVar("First")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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


def listen_to_client(ws: CleanClosingWebSocket, inbox: Inbox) -> None:
    """Read the client's frames from now on; its going away arrives in ``inbox`` as
    ``CLIENT_GONE``, so the relay waits on the inbox alone."""
    ws.read_in_background(lambda: inbox.put_nowait(CLIENT_GONE))


def client_left(ws: CleanClosingWebSocket, message: str) -> bool:
    """Whether the relay should stop: the client closed, vanished or misbehaved."""
    return message == CLIENT_GONE or ws.client_gone


def refuse_when_draining(svc: Services) -> None:
    """New websockets go to another replica while this one drains."""
    if svc.draining:
        raise ProblemError(
            "backend_unavailable", "this replica is draining", headers={"Retry-After": "1"}
        )


def websocket_route(
    kind: str,
    doc: str,
    *,
    authorize: Callable[[web.Request, Services], Awaitable[tuple[str, Authorized]]],
    read: Callable[[Services, Authorized], Awaitable[First]],
    relay: Callable[[Services, CleanClosingWebSocket, Inbox, First], Awaitable[None]],
) -> Handler:
    """A websocket handler of ``kind`` (``portal``, ``device``: the metric label), described
    by ``doc``.

    ``authorize`` checks the request and names the channel to follow; ``read`` reads what
    the first message needs once subscribed, before the upgrade; ``relay`` sends it and then
    relays the channel until the client leaves or the socket closes (calling
    :func:`listen_to_client` once it is ready to hear the client go)."""
    gone = f"{kind}_websocket_gone"

    async def handler(request: web.Request) -> web.StreamResponse:
        svc = services(request)
        refuse_when_draining(svc)
        channel, authorized = await authorize(request, svc)
        ws = CleanClosingWebSocket(heartbeat=PING_SECONDS, max_msg_size=MAX_MESSAGE_BYTES)
        async with svc.hub.subscription(channel) as inbox:
            first = await read(svc, authorized)
            del authorized  # an idle socket keeps only what its relay needs
            await ws.prepare(request)
            svc.websockets.add(ws)
            gauge = svc.metrics.open_websockets.labels(kind)
            gauge.inc()
            try:
                relaying = relay(svc, ws, inbox, first)
                del first  # the relay may keep less of it while it waits
                await relaying
            except (ConnectionResetError, RuntimeError) as exc:
                log.info(gone, error=str(exc))
            except RedisError:
                await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"backend unavailable")
            finally:
                gauge.dec()
                await ws.close()  # or wait for a close in progress: never drop the handshake
                svc.allocator.socket_closed()
        return ws

    handler.__name__ = handler.__qualname__ = f"{kind}_websocket"
    handler.__doc__ = doc
    return handler
