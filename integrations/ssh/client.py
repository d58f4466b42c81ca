"""A blocking client of pushgate's public HTTP API with a portal key (standard library only).

Every call opens its own connection (a login makes a handful), with the configured timeout
and, for https, a TLS context that trusts the configured CA file (or the system's CAs).
A connection failure, a timeout, a TLS error or a 5xx answer raises
:class:`GatewayUnreachable`; any other error answer raises :class:`Problem` with pushgate's
stable problem ``code``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import ssl
from typing import Any
from urllib.parse import quote, urlsplit

USER_AGENT = "pushgate-ssh/1"
LONG_POLL_MAX = 25


class GatewayUnreachable(Exception):
    """pushgate did not answer usefully: no connection, a timeout, TLS failure or a 5xx."""


class Problem(Exception):
    """An RFC 9457 problem answer from pushgate (4xx)."""

    def __init__(self, status: int, body: dict[str, Any], retry_after: int | None) -> None:
        self.status = status
        self.code = str(body.get("code") or f"http_{status}")
        self.detail = str(body.get("detail") or body.get("title") or "")
        self.retry_after = retry_after
        remaining = body.get("attempts_remaining")
        self.attempts_remaining = remaining if isinstance(remaining, int) else None
        super().__init__(f"{status} {self.code}: {self.detail}")


def _path(*parts: str) -> str:
    return "/" + "/".join(quote(p, safe="") for p in parts)


class PendingCall:
    """A request already sent whose answer is read later (so a caller can ``select`` on it)."""

    def __init__(self, gateway: Gateway, conn: http.client.HTTPConnection) -> None:
        self._gateway = gateway
        self._conn = conn

    def fileno(self) -> int:
        """The socket to wait on for the answer."""
        sock = self._conn.sock
        if sock is None:
            raise GatewayUnreachable("the connection closed")
        return int(sock.fileno())

    def result(self) -> dict[str, Any]:
        """Read and decode the answer (blocks until it arrives)."""
        try:
            return self._gateway.read_answer(self._conn)
        finally:
            self._conn.close()

    def abandon(self) -> None:
        """Stop waiting for the answer."""
        self._conn.close()


class Gateway:
    """pushgate's API at ``url``, called with the portal key ``api_key``."""

    def __init__(
        self, url: str, api_key: str, *, ca_file: str | None = None, timeout: float = 10.0
    ) -> None:
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port
        self._base = parts.path.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        self._tls: ssl.SSLContext | None = None
        if self._https:
            self._tls = ssl.create_default_context(cafile=ca_file)

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        if self._tls is not None:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=self._tls
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def send(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, wait: float = 0
    ) -> PendingCall:
        """Send one request; the answer is read by :meth:`PendingCall.result`."""
        conn = self._connect(self.timeout + wait)
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, self._base + path, body=data, headers=headers)
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise GatewayUnreachable(_describe(exc)) from None
        return PendingCall(self, conn)

    def read_answer(self, conn: http.client.HTTPConnection) -> dict[str, Any]:
        """The decoded JSON object of the answer on ``conn`` (empty for 204)."""
        try:
            resp = conn.getresponse()
            raw = resp.read(256 * 1024)
        except (OSError, http.client.HTTPException) as exc:
            raise GatewayUnreachable(_describe(exc)) from None
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        if resp.status >= 500:
            raise GatewayUnreachable(f"HTTP {resp.status} {body.get('code') or resp.reason}")
        if resp.status >= 400:
            raise Problem(resp.status, body, _retry_after(resp.getheader("Retry-After")))
        return body

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a request and return its decoded answer."""
        return self.send(method, path, body).result()

    def create_challenge(
        self, user_id: str, resource: str, app_name: str, context: dict[str, str]
    ) -> dict[str, Any]:
        """``POST /v1/challenges``: ask the user's phones."""
        body = {"user_id": user_id, "resource": resource, "app_name": app_name, "context": context}
        return self.call("POST", "/v1/challenges", body)

    def start_wait(self, challenge_id: str, seconds: float) -> PendingCall:
        """Begin a long poll ``GET /v1/challenges/{id}?wait=`` (answers when it ends)."""
        wait = max(1, min(LONG_POLL_MAX, math.ceil(seconds)))
        return self.send("GET", f"{_path('v1', 'challenges', challenge_id)}?wait={wait}", wait=wait)

    def challenge(self, challenge_id: str) -> dict[str, Any]:
        """``GET /v1/challenges/{id}`` without waiting."""
        return self.call("GET", _path("v1", "challenges", challenge_id))

    def challenge_code(self, challenge_id: str, code: str) -> dict[str, Any]:
        """``POST /v1/challenges/{id}/totp``: a typed code instead of the phone."""
        return self.call("POST", _path("v1", "challenges", challenge_id, "totp"), {"code": code})

    def verify_code(self, user_id: str, code: str) -> dict[str, Any]:
        """``POST /v1/users/{id}/totp/verify``: a code when no push can be sent."""
        return self.call("POST", _path("v1", "users", user_id, "totp", "verify"), {"code": code})

    def cancel(self, challenge_id: str) -> None:
        """``DELETE /v1/challenges/{id}``, best effort (the login is refused either way)."""
        with contextlib.suppress(GatewayUnreachable, Problem):
            self.call("DELETE", _path("v1", "challenges", challenge_id))

    def user(self, user_id: str) -> dict[str, Any] | None:
        """``GET /v1/users/{id}``, or None for an unknown user."""
        try:
            return self.call("GET", _path("v1", "users", user_id))
        except Problem as problem:
            if problem.status == 404:
                return None
            raise

    def device_name(self, user_id: str, device_id: str) -> str | None:
        """The name of one of the user's devices, best effort."""
        try:
            listing = self.call("GET", _path("v1", "users", user_id, "devices"))
        except (GatewayUnreachable, Problem):
            return None
        for item in listing.get("items") or []:
            if isinstance(item, dict) and item.get("device_id") == device_id:
                name = item.get("name")
                return str(name) if name else None
        return None


def _retry_after(value: str | None) -> int | None:
    try:
        return max(0, int(value)) if value else None
    except ValueError:
        return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted ({exc.verify_message}); check ca_file"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return f"{type(exc).__name__}: {exc}"
