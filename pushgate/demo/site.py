"""Demo pages (portal and phone simulator) mounted under /demo/ on the gateway."""

from __future__ import annotations

from aiohttp import web

from pushgate.settings import Settings


def install_demo(app: web.Application, *, settings: Settings, tenant: dict[str, str]) -> None:
    """Mount the demo routes on ``app``."""
    async def index(_request: web.Request) -> web.Response:
        return web.Response(text="pushgate demo", content_type="text/plain")

    app.router.add_get("/demo/", index)
