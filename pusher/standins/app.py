"""The part every stand-in shares: faults, the request record and the JSON control API.

Control API (same TLS port as the service, HTTP/2 or HTTP/1.1, JSON bodies)::

    GET    /_standin/health      {"name": "apns", "ok": true}
    GET    /_standin/received    {"received": [record, ...]}   (?token=T filters)
    GET    /_standin/summary     {"total": n, "by_status": {"200": n, ...}}
    DELETE /_standin/received    forget the record
    GET    /_standin/faults      the current fault plan
    POST   /_standin/faults      apply a fault plan (see pusher.standins.faults)
    DELETE /_standin/faults      drop every fault
    POST   /_standin/outage      {"seconds": s}: stop listening and drop every connection (the
                                 service is down: connections are refused), back after s seconds

A request counts as accepted when it is answered: the configured latency passes before the
answer is decided and recorded, and a request whose stream is reset or whose connection is
lost in the meantime is never answered nor recorded (``received.in_progress`` counts the
requests being handled).
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from h2.settings import SettingCodes

from pusher.standins.faults import Fault, FaultPlan
from pusher.standins.messages import Request, Response
from pusher.standins.recorder import Received, Recorder

CONTROL_PREFIX = "/_standin/"


class Standin(abc.ABC):
    """Base class of the APNs and FCM stand-ins (a handler for :class:`StandinServer`)."""

    name: ClassVar[str] = "standin"

    def __init__(self) -> None:
        self.faults = FaultPlan()
        self.received = Recorder()
        self.outage: Callable[[float], None] | None = None  # set by the server that serves it

    @property
    def h2_settings(self) -> Mapping[SettingCodes, int]:
        """HTTP/2 settings each new connection starts with."""
        return {}

    async def handle(self, request: Request) -> Response:
        """Entry point for the server: the control API or the service itself."""
        if request.path.startswith(CONTROL_PREFIX):
            return self._control(request)
        with self.received.handling():
            return await self.handle_service(request)

    @abc.abstractmethod
    async def handle_service(self, request: Request) -> Response:
        """Answer one push request the way the real service would."""

    def record(
        self, request: Request, token: str, payload: Any, status: int | None, reason: str | None
    ) -> None:
        """Add one push request and its answer (``status`` None: left unanswered)."""
        self.received.add(
            Received(
                at=time.time(),
                method=request.method,
                path=request.path,
                token=token,
                headers=request.header_map(),
                payload=payload,
                body_size=len(request.body),
                status=status,
                reason=reason,
                http_version=request.http_version,
                connection_id=request.connection.connection_id,
            )
        )

    async def pause(self, fault: Fault | None) -> None:
        """Apply the configured latency, and never return for a hanging fault."""
        latency = self.faults.latency
        if latency:
            await asyncio.sleep(latency)
        if fault is not None and fault.hang:
            await asyncio.get_running_loop().create_future()

    def _control(self, request: Request) -> Response:
        url = urlsplit(request.path)
        route = (request.method, url.path.removeprefix(CONTROL_PREFIX).rstrip("/"))
        if route == ("GET", "health"):
            return Response.of_json(200, {"name": self.name, "ok": True})
        if route == ("GET", "received"):
            token = parse_qs(url.query).get("token", [None])[0]
            items = self.received.for_token(token) if token else self.received.all()
            return Response.of_json(200, {"received": [r.to_json() for r in items]})
        if route == ("GET", "summary"):
            return Response.of_json(200, self.received.summary())
        if route == ("DELETE", "received"):
            self.received.clear()
            return Response(204)
        if route == ("GET", "faults"):
            return Response.of_json(200, self.faults.to_json())
        if route == ("POST", "faults"):
            try:
                body: Any = request.json() if request.body else {}
                if not isinstance(body, dict):
                    raise ValueError("a JSON object is required")
                self.faults.apply_json(body)
            except (ValueError, TypeError, AttributeError) as exc:
                return Response.of_json(400, {"error": str(exc)})
            return Response.of_json(200, self.faults.to_json())
        if route == ("DELETE", "faults"):
            self.faults.reset()
            return Response(204)
        if route == ("POST", "outage"):
            try:
                seconds = float(request.json()["seconds"])
            except (ValueError, TypeError, KeyError) as exc:
                return Response.of_json(400, {"error": f"seconds: {exc}"})
            if self.outage is None:
                return Response.of_json(409, {"error": "not served"})
            # Answer first, then go down (this very connection is dropped too).
            asyncio.get_running_loop().call_later(0.05, self.outage, seconds)
            return Response.of_json(202, {"down_for": seconds})
        return Response.of_json(404, {"error": "no such control route"})
