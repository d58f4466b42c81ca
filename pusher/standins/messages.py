"""Plain request/response values passed between the stand-ins' HTTP engines and handlers."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol


class ConnectionControl(Protocol):
    """What a handler may do to the connection a request came in on."""

    http_version: str  # "2" or "1.1"
    connection_id: int  # sequential per server, to tell connections apart in records
    notes: dict[str, Any]  # per-connection scratch space for handlers

    def set_max_concurrent_streams(self, value: int) -> None:
        """Advertise a new HTTP/2 MAX_CONCURRENT_STREAMS (no-op on HTTP/1.1)."""


@dataclass(frozen=True, slots=True)
class Request:
    """One complete HTTP request."""

    method: str
    path: str  # including any query string
    headers: tuple[tuple[str, str], ...]  # lower-case names, in arrival order
    body: bytes
    connection: ConnectionControl

    @property
    def http_version(self) -> str:
        return self.connection.http_version

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), if present."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k == wanted), None)

    def header_map(self) -> dict[str, str]:
        """Headers as a dict (HTTP/2 pseudo-headers left out, the last value wins)."""
        return {k: v for k, v in self.headers if not k.startswith(":")}

    def json(self) -> Any:
        """The body parsed as JSON; raises ``ValueError`` if it is not."""
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class Response:
    """One HTTP response."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @classmethod
    def of_json(cls, status: int, obj: Any, headers: Iterable[tuple[str, str]] = ()) -> Response:
        body = json.dumps(obj, separators=(",", ":")).encode()
        return cls(status, (("content-type", "application/json"), *headers), body)


Handler = Callable[[Request], Awaitable[Response]]


def parse_json(body: bytes) -> Any:
    """``body`` parsed as JSON, or None if it is empty or not JSON."""
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None
