"""The calls ``pushgate radius`` makes to the public HTTP API, with a portal key (aiohttp)."""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

#: the longest ``?wait=`` the gateway accepts on ``GET /v1/challenges/{id}``
LONG_POLL_SECONDS = 55
#: how long a push can stay pending at most (policy ``push_ttl_seconds`` bound) plus a margin
LONGEST_PUSH_SECONDS = 300 + 15
#: pause before asking again when the gateway is unreachable during a wait
RETRY_PAUSE_SECONDS = 1.0
#: bound on long-poll rounds (each ends at the challenge's end, its deadline or 55 s)
MAX_POLL_ROUNDS = 400

JSONDict = dict[str, Any]


class GatewayUnavailable(Exception):
    """The gateway could not be reached, timed out or answered 5xx."""


class Refusal(Exception):
    """The gateway answered a 4xx problem (``code`` is its stable problem code)."""

    def __init__(self, status: int, problem: JSONDict) -> None:
        """Keep the status and the problem body."""
        self.status = status
        self.code = str(problem.get("code") or "")
        self.detail = str(problem.get("detail") or problem.get("title") or "")
        remaining = problem.get("attempts_remaining")
        self.attempts_remaining = remaining if isinstance(remaining, int) else None
        super().__init__(f"{status} {self.code}: {self.detail}")


@dataclass(frozen=True)
class ApiConfig:
    """Where the gateway is and how to talk to it."""

    base_url: str
    api_key: str
    timeout_seconds: float = 10.0
    ca_file: Path | None = None
    max_connections: int = 2000


class PushgateApi:
    """Challenges and TOTP checks through the public API. Use inside a running event loop."""

    def __init__(self, config: ApiConfig) -> None:
        """Open one connection pool for every call (long polls hold a connection each)."""
        self._config = config
        ssl_context: ssl.SSLContext | bool = True
        if config.ca_file is not None:
            ssl_context = ssl.create_default_context(cafile=str(config.ca_file))
        self._session = aiohttp.ClientSession(
            base_url=config.base_url + "/",
            headers={"Authorization": f"Bearer {config.api_key}"},
            connector=aiohttp.TCPConnector(limit=config.max_connections, ssl=ssl_context),
        )

    async def close(self) -> None:
        """Close the connection pool."""
        await self._session.close()

    async def _call(
        self, method: str, path: str, body: JSONDict | None = None, *, extra_time: float = 0
    ) -> JSONDict:
        timeout = aiohttp.ClientTimeout(total=self._config.timeout_seconds + extra_time)
        try:
            async with self._session.request(
                method, path.lstrip("/"), json=body, timeout=timeout
            ) as resp:
                if resp.status >= 500:
                    raise GatewayUnavailable(f"{method} {path}: HTTP {resp.status}")
                text = await resp.text(errors="replace")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GatewayUnavailable(f"{method} {path}: {exc!r}") from exc
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if resp.status >= 400:  # a 4xx is an answer, never an outage (no fail-open on it)
            raise Refusal(resp.status, data if isinstance(data, dict) else {"detail": text[:200]})
        if not isinstance(data, dict):
            raise Refusal(resp.status, {"detail": "the answer is not a JSON object"})
        return data

    async def create_challenge(
        self, user_id: str, *, resource: str, app_name: str, ip: str | None
    ) -> JSONDict:
        """``POST /v1/challenges``; ``number_matching`` is left to the tenant policy."""
        body: JSONDict = {
            "user_id": user_id,
            "resource": resource,
            "app_name": app_name,
            "context": {"ip": ip} if ip else {},
        }
        return await self._call("POST", "/v1/challenges", body)

    async def get_challenge(self, challenge_id: str, wait: int = 0) -> JSONDict:
        """``GET /v1/challenges/{id}``, holding up to ``wait`` seconds while it is pending."""
        path = f"/v1/challenges/{quote(challenge_id, safe='')}"
        if wait:
            path += f"?wait={wait}"
        return await self._call("GET", path, extra_time=wait)

    async def wait_for_end(self, challenge_id: str) -> JSONDict:
        """Long-poll until the challenge is no longer pending (the gateway decides expiry).

        An unreachable gateway is asked again until the longest possible push has passed,
        so a gateway restart during the wait does not lose the answer.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LONGEST_PUSH_SECONDS
        view: JSONDict | None = None
        for _ in range(MAX_POLL_ROUNDS):
            try:
                view = await self.get_challenge(challenge_id, wait=LONG_POLL_SECONDS)
            except GatewayUnavailable:
                if loop.time() + RETRY_PAUSE_SECONDS >= deadline:
                    raise
                await asyncio.sleep(RETRY_PAUSE_SECONDS)
                continue
            if view.get("status") != "pending" or loop.time() >= deadline:
                return view
        if view is None:
            raise GatewayUnavailable(f"no answer about {challenge_id}")
        return view

    async def verify_totp(self, user_id: str, code: str) -> None:
        """``POST /v1/users/{id}/totp/verify``; returns only when the code is accepted."""
        await self._call("POST", f"/v1/users/{quote(user_id, safe='')}/totp/verify", {"code": code})

    async def challenge_totp(self, challenge_id: str, code: str) -> JSONDict:
        """``POST /v1/challenges/{id}/totp``: a code approves the pending challenge."""
        path = f"/v1/challenges/{quote(challenge_id, safe='')}/totp"
        return await self._call("POST", path, {"code": code})
