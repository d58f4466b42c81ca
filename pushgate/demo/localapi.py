"""The demo backend's client of the real API on this same process, over loopback HTTP."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from gateway.problems import ProblemError
from pushgate.settings import Settings

#: the header every state-changing demo call carries; a cross-site form cannot send it
CSRF_HEADER = "X-Pushgate-Demo"
MAX_DEMO_BODY = 8 * 1024


def internal_url(settings: Settings) -> str:
    """Where this process listens, as seen from inside it (wildcard binds become loopback)."""
    host = settings.host
    if host in ("", "0.0.0.0"):  # noqa: S104 - mapping a wildcard bind to loopback
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


@dataclass
class Reply:
    """One API answer: status, parsed JSON body (or None) and ``Retry-After`` seconds."""

    status: int
    body: Any
    retry_after: int | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return 200 <= self.status < 300

    @property
    def code(self) -> str | None:
        """The problem's stable ``code`` when the answer is an error."""
        if isinstance(self.body, dict) and isinstance(self.body.get("code"), str):
            return str(self.body["code"])
        return None


class LocalApi:
    """Calls ``/v1/...`` on this process with the demo tenant's portal key (kept server-side)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, api_key: str) -> None:
        """Use ``session`` for every call to ``base_url``."""
        self.session = session
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        authorization: str | None = None,
    ) -> Reply:
        """One request; the portal key is sent unless another ``Authorization`` is given."""
        headers = {"Authorization": authorization or f"Bearer {self._api_key}"}
        async with self.session.request(
            method, self.base_url + path, json=body, headers=headers
        ) as resp:
            text = await resp.text()
            try:
                parsed = json.loads(text) if text else None
            except ValueError:
                parsed = {"detail": text[:500]}
            retry = resp.headers.get("Retry-After", "")
            return Reply(
                resp.status,
                parsed,
                int(retry) if retry.isdigit() else None,
                {k: v for k, v in resp.headers.items() if k == "Retry-After"},
            )


def relay(reply: Reply, *, extra: dict[str, Any] | None = None) -> web.Response:
    """Hand an API answer to the page unchanged (status, JSON, ``Retry-After``)."""
    body = reply.body if reply.body is not None else {}
    if extra and isinstance(body, dict):
        body = {**body, **extra}
    content_type = "application/json" if reply.ok else "application/problem+json"
    if reply.status == 204:
        return web.Response(status=204, headers=reply.headers)
    return web.Response(
        status=reply.status,
        text=json.dumps(body),
        content_type=content_type,
        headers=reply.headers,
    )


def check_csrf(request: web.Request) -> None:
    """State-changing demo calls must come from the demo pages themselves."""
    if request.headers.get(CSRF_HEADER) != "1":
        raise ProblemError("forbidden", f"demo calls need the {CSRF_HEADER}: 1 header")
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        raise ProblemError("forbidden", "cross-origin demo calls are refused")


async def read_json(request: web.Request) -> dict[str, Any]:
    """The small JSON object body of a demo call (CSRF-checked)."""
    check_csrf(request)
    raw = await request.content.read(MAX_DEMO_BODY + 1)
    if len(raw) > MAX_DEMO_BODY:
        raise ProblemError("payload_too_large", "demo request bodies are small")
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        raise ProblemError("invalid_request", "the body is not JSON") from None
    if not isinstance(value, dict):
        raise ProblemError("invalid_request", "the body must be a JSON object")
    return value


def text_field(body: dict[str, Any], name: str, *, max_length: int = 256) -> str:
    """A required, trimmed string field of a demo body."""
    value = body.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise ProblemError(
            "invalid_request",
            f"{name} must be a non-empty string",
            errors=[{"field": name, "message": f"string of 1..{max_length} characters"}],
        )
    return value.strip()
