"""A small portal-side API client for tests: what an identity portal's backend does."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from multidict import CIMultiDict


@dataclass
class Reply:
    """Status, headers and parsed JSON body of one response."""

    status: int
    body: Any
    headers: CIMultiDict[str] = field(default_factory=CIMultiDict)
    content_type: str = ""


class Portal:
    """Calls the API with one bearer key."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, api_key: str) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> Reply:
        hdrs = dict(self.headers if auth else {})
        hdrs.update(headers or {})
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        async with self.session.request(method, self.base_url + path, data=data, headers=hdrs) as r:
            text = await r.text()
            try:
                parsed = json.loads(text) if text else None
            except ValueError:
                parsed = text
            return Reply(r.status, parsed, CIMultiDict(r.headers), r.content_type)

    async def create_challenge(
        self, user_id: str, resource: str = "salesforce", **extra: Any
    ) -> Reply:
        body = {
            "user_id": user_id,
            "resource": resource,
            "app_name": "Salesforce",
            "context": {"ip": "203.0.113.9", "location": "Berlin, DE", "user_agent": "Firefox"},
            **extra,
        }
        return await self.call("POST", "/v1/challenges", body)

    async def enrollment_code(self, user_id: str) -> str:
        reply = await self.call("POST", f"/v1/users/{user_id}/push-enrollments")
        assert reply.status == 201, reply.body
        return str(reply.body["code"])

    def ws_url(self, challenge_id: str, watch_token: str | None = None) -> str:
        url = f"{self.base_url}/v1/challenges/{challenge_id}/ws"
        return url + (f"?watch_token={watch_token}" if watch_token else "")

    async def wait_result(
        self, challenge_id: str, *, watch_token: str | None = None, timeout: float = 15
    ) -> list[dict[str, Any]]:
        """Open the challenge websocket and collect messages until the server closes it."""
        headers = {} if watch_token else self.headers
        messages: list[dict[str, Any]] = []
        async with self.session.ws_connect(
            self.ws_url(challenge_id, watch_token),
            headers=headers,
            timeout=aiohttp.ClientWSTimeout(ws_close=timeout),
        ) as ws:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    messages.append(json.loads(msg.data))
        return messages
