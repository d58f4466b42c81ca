"""Start the embedded Redis, a demo tenant, the gateway with a worker, and print the URLs."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from typing import Any

from approvals.secretbox import new_key_setting
from approvals.store.backend import open_backend
from approvals.store.tenants import TenantStore
from gateway.app import create_app
from pushgate.embedded import EmbeddedRedis
from pushgate.runtime import serve, stop_on_signals
from pushgate.settings import Settings, load_settings

#: Ctrl-C should end a demo quickly; nothing in it needs a long drain
DEMO_DRAIN_SECONDS = 2.0


async def _demo_tenant(settings: Settings) -> dict[str, str]:
    backend = open_backend(settings)
    try:
        tenants = TenantStore(backend)
        now_ms = int(time.time() * 1000)
        tenant_id, _, admin_key = await tenants.create_tenant("demo", now_ms)
        _, portal_key = await tenants.create_key(tenant_id, "portal", now_ms)
    finally:
        await backend.close()
    return {"tenant_id": tenant_id, "admin_key": admin_key, "portal_key": portal_key}


def _check_port(host: str, port: int) -> None:
    """Fail fast with a clear message, before anything starts, when the port is taken."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ValueError(
            f"cannot listen on {host}:{port} ({reason}); pick another with --port"
        ) from None


async def run_demo(*, host: str | None = None, port: int | None = None) -> None:
    """Run until Ctrl-C; the embedded server stops with the demo."""
    overrides: dict[str, Any] = {k: v for k, v in {"host": host, "port": port}.items() if v}
    if "PUSHGATE_DRAIN_SECONDS" not in os.environ:
        overrides["drain_seconds"] = DEMO_DRAIN_SECONDS
    base = load_settings(**overrides)
    _check_port(base.host, base.port)
    embedded: EmbeddedRedis | None = None
    if base.redis_url is None:
        embedded = EmbeddedRedis()
        embedded.start()
        overrides["redis_url"] = embedded.url
    overrides.setdefault("secret_key", base.secret_key or new_key_setting())
    settings = load_settings(**overrides)
    try:
        tenant = await _demo_tenant(settings)
        app = create_app(settings, backend=open_backend(settings))
        from pushgate.demo.site import install_demo

        install_demo(app, settings=settings, tenant=tenant)
        stop = asyncio.Event()
        stop_on_signals(stop)

        def announce(_url: str) -> None:
            public = settings.public_url
            lines = [
                "pushgate demo is running",
                f"  portal page:     {public}/demo/",
                f"  phone simulator: {public}/demo/phone",
                f"  API contract:    {public}/openapi.json",
                f"  try the API:     curl -H 'Authorization: Bearer {tenant['admin_key']}' "
                f"{public}/v1/policy",
                f"  tenant:          {tenant['tenant_id']}",
                f"  portal API key:  {tenant['portal_key']}",
                f"  admin API key:   {tenant['admin_key']}",
                f"  Redis:           {settings.redis_url}"
                + (" (embedded, private)" if embedded else ""),
                "Open both pages side by side, then sign in on the portal as any user.",
                "Press Ctrl-C to stop.",
            ]
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()

        await serve(settings, with_worker=True, stop=stop, app=app, on_ready=announce)
    finally:
        if embedded is not None:
            embedded.close()
