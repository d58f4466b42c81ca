"""Run a stand-in on its own event loop in a background thread (tests, demo) or in the foreground.

A stand-in must not share the loop of the code under test: firebase-admin refreshes its
OAuth token with blocking HTTP calls, which would deadlock against a token endpoint on
the same loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType

from pusher.standins.app import Standin
from pusher.standins.server import StandinServer
from pusher.standins.tls import TlsMaterial


class StandinThread:
    """``start()`` binds and returns the port; ``stop()`` ends connections and the thread."""

    def __init__(
        self, standin: Standin, tls: TlsMaterial, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.standin = standin
        self.tls = tls
        self.host = host
        self.port = port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """Base URL such as ``https://127.0.0.1:8443`` (valid after ``start()``)."""
        return f"https://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> int:
        """Start serving in a daemon thread; return the bound port."""
        if self._thread is not None:
            raise RuntimeError("stand-in already started")
        self._thread = threading.Thread(
            target=self._run, name=f"standin-{self.standin.name}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"{self.standin.name} stand-in did not start")
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError(f"{self.standin.name} stand-in failed to start") from self._error
        return self.port

    def stop(self, timeout: float = 10.0) -> None:
        """Close the server (pending requests are dropped) and join the thread."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        self._thread = None

    def outage(self, seconds: float) -> None:
        """Take the service down for ``seconds`` (see ``StandinServer.outage``); returns at once."""
        if self.standin.outage is None:
            raise RuntimeError(f"{self.standin.name} stand-in is not running")
        self.standin.outage(seconds)

    def __enter__(self) -> StandinThread:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()

        def ready(port: int) -> None:
            self.port = port
            self._ready.set()

        await serve(self.standin, self.tls, self.host, self.port, self._stop, on_ready=ready)


async def serve(
    standin: Standin,
    tls: TlsMaterial,
    host: str,
    port: int,
    stop: asyncio.Event,
    *,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Serve ``standin`` on ``host:port`` until ``stop`` is set."""
    server = StandinServer(standin.handle, h2_settings=standin.h2_settings)
    bound = await server.start(host, port, tls.server_context())
    loop = asyncio.get_running_loop()
    outages: set[asyncio.Task[None]] = set()

    def outage(seconds: float) -> None:
        """Thread-safe: schedule an outage on the stand-in's own loop."""

        def begin() -> None:
            task = loop.create_task(server.outage(seconds))
            outages.add(task)
            task.add_done_callback(outages.discard)

        loop.call_soon_threadsafe(begin)

    standin.outage = outage
    try:
        if on_ready is not None:
            on_ready(bound)
        await stop.wait()
    finally:
        standin.outage = None
        for task in outages:
            task.cancel()
        await server.close()
