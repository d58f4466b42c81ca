"""Demo pages (portal and phone simulator) mounted under /demo/ on the gateway.

The pages are static files (``static/``: HTML, vanilla JS, CSS). Their backend under
``/demo/api/`` holds the demo tenant's portal key server-side and drives the real
``/v1`` API over loopback HTTP, so the demo exercises exactly what a portal and a phone
would.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

from pushgate.demo import phone_api, portal_api
from pushgate.demo.localapi import LocalApi, internal_url
from pushgate.demo.phones import PhoneBook
from pushgate.demo.state import DEMO, DemoState
from pushgate.settings import Settings

STATIC = Path(__file__).with_name("static")
PAGES = {"/demo/": "portal.html", "/demo/phone": "phone.html"}
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self' ws://{host} wss://{host}",
        "script-src 'self'",
        "style-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
#: the TOTP routes of SPEC §5 the pages use; without them the pages hide the code features
TOTP_ROUTES = (
    re.compile(r"/v1/users/\{[^}]+\}/totp"),
    re.compile(r"/v1/users/\{[^}]+\}/totp/confirm"),
    re.compile(r"/v1/challenges/\{[^}]+\}/totp"),
)


def has_routes(app: web.Application, patterns: tuple[re.Pattern[str], ...]) -> bool:
    """True when the app serves a POST route for every canonical path pattern."""
    posts = {
        route.resource.canonical
        for route in app.router.routes()
        if route.method == "POST" and route.resource is not None
    }
    return all(any(p.fullmatch(c) for c in posts) for p in patterns)


def _page(name: str) -> Handler:
    async def handler(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / name)

    return handler


async def _to_index(_request: web.Request) -> web.Response:
    raise web.HTTPFound("/demo/")


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Strict headers on every demo response: own-origin only, no framing, no caching of API."""
    if not request.path.startswith("/demo"):
        return
    headers = response.headers
    host = request.host if _HOST.fullmatch(request.host) else "localhost"
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY.format(host=host))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Cache-Control", "no-store" if "/api/" in request.path else "no-cache")


def install_demo(app: web.Application, *, settings: Settings, tenant: dict[str, str]) -> None:
    """Mount the demo pages and their backend on ``app`` (before it starts)."""
    base_url = internal_url(settings)
    state = DemoState(
        settings=settings,
        tenant=tenant,
        totp_available=has_routes(app, TOTP_ROUTES),
        phones=PhoneBook(settings, base_url),
    )
    app[DEMO] = state

    async def backend(_app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            state.api = LocalApi(session, base_url, tenant["portal_key"])
            state.phones.start(session)
            yield
            await state.phones.close()
            state.api = None

    async def stop_phones(_app: web.Application) -> None:
        await state.phones.close()

    app.router.add_get("/demo", _to_index)
    for path, name in PAGES.items():
        app.router.add_get(path, _page(name))
    app.router.add_static("/demo/static/", STATIC)
    app.router.add_routes(portal_api.routes)
    app.router.add_routes(phone_api.routes)
    app.cleanup_ctx.append(backend)
    app.on_shutdown.insert(0, stop_phones)
    app.on_response_prepare.append(_security_headers)
