"""Running the gateway and the worker as long-lived processes, with graceful drain."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from aiohttp import web

from approvals.store.backend import open_backend
from approvals.store.clock import ServerClock
from gateway.app import create_app
from gateway.memory import tune_collector
from gateway.services import SERVICES
from pusher.providers.factory import build_providers
from pusher.worker import Worker
from pushgate.listener import GuardedTCPSite
from pushgate.logs import get_logger
from pushgate.settings import Settings

log = get_logger("pushgate.runtime")

MAX_NOTICE_SECONDS = 5.0


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` (graceful drain instead of dying mid-request)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


def _worker(settings: Settings, clock: ServerClock | None = None) -> Worker:
    """A worker with its providers and its own Redis backend, deciding with ``clock``."""
    return Worker(
        settings,
        providers=build_providers(settings),
        backend=open_backend(settings, clock),
        reclaim_idle_ms=settings.worker_reclaim_idle_ms,
    )


def _site(
    runner: web.AppRunner, settings: Settings, port: int, *, backlog: int = 128
) -> GuardedTCPSite:
    """A listener that closes silent, slow and idle connections (HTTP timeout settings)."""
    return GuardedTCPSite(
        runner,
        settings.host,
        port,
        request_timeout=settings.http_request_timeout_seconds,
        keepalive_timeout=settings.http_keepalive_timeout_seconds,
        backlog=backlog,
    )


def drain_notice_seconds(drain_seconds: float) -> float:
    """How long a draining gateway keeps its listener open, answering ``/readyz`` with 503
    and refusing new websockets, so load balancers stop routing to it (a quarter of the
    grace period, at most 5 s); the rest of the grace period is for in-flight requests."""
    return min(MAX_NOTICE_SECONDS, drain_seconds / 4)


def attach_worker(app: web.Application, settings: Settings) -> Worker:
    """Run a worker inside the gateway process (``serve --with-worker`` and ``demo``), on the
    gateway's clock (one clock per process) and a connection pool of its own (its blocking
    stream reads never wait in line with requests)."""
    worker = _worker(settings, app[SERVICES].clock)
    app[SERVICES].extra_registries.append(worker.metrics.registry)

    async def lifecycle(_app: web.Application):  # type: ignore[no-untyped-def]
        await worker.start()
        yield
        await worker.stop(settings.drain_seconds)

    app.cleanup_ctx.append(lifecycle)
    return worker


async def serve(
    settings: Settings,
    *,
    with_worker: bool = False,
    stop: asyncio.Event | None = None,
    app: web.Application | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the gateway until ``stop`` (or SIGTERM), then drain within ``drain_seconds``.

    Draining: ``/readyz`` answers 503 and new websockets are refused at once while the
    listener stays open for :func:`drain_notice_seconds`; then the listener closes, open
    websockets close with 1012, and in-flight requests (long polls included, which answer
    their snapshot early if they would outlast the grace period) finish.
    """
    stop = stop or asyncio.Event()
    app = app or create_app(settings, backend=open_backend(settings))
    if with_worker:
        attach_worker(app, settings)
    notice = drain_notice_seconds(settings.drain_seconds)
    runner = web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=settings.drain_seconds - notice,
        handle_signals=False,
    )
    await runner.setup()
    site = _site(runner, settings, settings.port, backlog=2048)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    tune_collector()  # what start-up built lives as long as the process: no GC walks it again
    url = f"http://{settings.host}:{settings.port}"
    log.info("gateway_listening", url=url, with_worker=with_worker)
    if on_ready is not None:
        on_ready(url)
    await stop.wait()
    log.info("gateway_draining", grace_seconds=settings.drain_seconds, notice_seconds=notice)
    loop = asyncio.get_running_loop()
    app[SERVICES].begin_drain(loop.time() + settings.drain_seconds)
    await asyncio.sleep(notice)
    await runner.cleanup()
    log.info("gateway_stopped")


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Run a standalone worker with a small /metrics, /healthz and /readyz server."""
    stop = stop or asyncio.Event()
    worker = _worker(settings)
    metrics_app = web.Application()

    async def metrics(_request: web.Request) -> web.Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return web.Response(
            body=generate_latest(worker.metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )

    async def healthz(_request: web.Request) -> web.Response:
        """Liveness: the process runs its loop."""
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        """Readiness: Redis answers and the worker is not stopping (503 otherwise)."""
        if await worker.ready():
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "unavailable"}, status=503)

    metrics_app.router.add_get("/metrics", metrics)
    metrics_app.router.add_get("/healthz", healthz)
    metrics_app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(metrics_app, access_log=None, handle_signals=False)
    await runner.setup()
    if settings.worker_metrics_port:
        await _site(runner, settings, settings.worker_metrics_port).start()
    log.info("worker_started", name=worker.name, providers=sorted(worker.providers))
    try:
        await worker.run_until(stop)
    finally:
        await runner.cleanup()
    log.info("worker_stopped")
