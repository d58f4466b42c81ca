"""Async (aiohttp) client for the device side of the API (SPEC §3–§4)."""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp

from approvals.binding import Decision
from pushgate.devicekit.answers import sign_response_body
from pushgate.devicekit.authenticator import JSONDict, SoftAuthenticator
from pushgate.devicekit.enrollment import (
    DEFAULT_DEVICE_NAME,
    DeviceCredentials,
    Platform,
    enroll_body,
)
from pushgate.devicekit.errors import DeviceApiError


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _retry_after(headers: Any) -> float | None:
    try:
        return float(headers["Retry-After"])
    except (KeyError, ValueError):
        return None


async def _api_error(resp: aiohttp.ClientResponse) -> DeviceApiError:
    text = await resp.text(errors="replace")
    try:
        problem = json.loads(text)
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        problem = {"status": resp.status, "title": resp.reason or "", "detail": text[:500]}
    return DeviceApiError(resp.status, problem, retry_after=_retry_after(resp.headers))


class DeviceClient:
    """One enrolled (or enrolling) device talking to one pushgate server.

    Pass a ``session`` to share connections; otherwise the client opens its own on first use
    and closes it in :meth:`close` (or ``async with``). Without an ``authenticator`` one is
    generated at enrollment, with the server's origin as WebAuthn origin.
    """

    def __init__(
        self,
        base_url: str,
        session: aiohttp.ClientSession | None = None,
        authenticator: SoftAuthenticator | None = None,
        *,
        credentials: DeviceCredentials | None = None,
    ) -> None:
        """Point at ``base_url``; pass stored ``credentials`` to resume an enrolled device."""
        self.base_url = base_url.rstrip("/")
        self.authenticator = authenticator
        self.credentials = credentials
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> DeviceClient:
        """Use as ``async with DeviceClient(...) as device``."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the session if this client opened it."""
        await self.close()

    async def close(self) -> None:
        """Close the session if this client opened it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def device_id(self) -> str | None:
        """The enrolled device's id, or None before enrollment."""
        return self.credentials.device_id if self.credentials else None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The HTTP session (opened on first use when none was given)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    def url(self, path: str) -> str:
        """The absolute URL of an API path."""
        return self.base_url + path

    def auth_headers(self) -> dict[str, str]:
        """The ``Authorization`` header of the enrolled device."""
        if self.credentials is None:
            raise RuntimeError("the device is not enrolled")
        return {"Authorization": self.credentials.authorization}

    async def _request(
        self, method: str, path: str, *, body: JSONDict | None = None, auth: bool = True
    ) -> Any:
        headers = self.auth_headers() if auth else {}
        async with self.session.request(method, self.url(path), json=body, headers=headers) as resp:
            if resp.status >= 400:
                raise await _api_error(resp)
            if resp.status == 204 or resp.content_length == 0:
                return None
            return await resp.json(content_type=None)

    async def enroll_options(self, code: str) -> JSONDict:
        """``POST /v1/device/enroll/options``: the WebAuthn creation options for ``code``."""
        options: JSONDict = await self._request(
            "POST", "/v1/device/enroll/options", body={"code": code}, auth=False
        )
        return options

    async def enroll(
        self,
        code: str,
        platform: Platform = "none",
        push_token: str | None = None,
        app_bundle_id: str | None = None,
        device_name: str = DEFAULT_DEVICE_NAME,
    ) -> DeviceCredentials:
        """Fetch options, register the credential, ``POST /v1/device/enroll``; keep the secret."""
        options = await self.enroll_options(code)
        if self.authenticator is None:
            self.authenticator = SoftAuthenticator.generate(origin=_origin_of(self.base_url))
        body = enroll_body(
            self.authenticator,
            code,
            options,
            platform=platform,
            push_token=push_token,
            app_bundle_id=app_bundle_id,
            device_name=device_name,
        )
        answer = await self._request("POST", "/v1/device/enroll", body=body, auth=False)
        self.credentials = DeviceCredentials.from_json(answer)
        return self.credentials

    async def list_challenges(self) -> list[JSONDict]:
        """``GET /v1/device/challenges``: this user's pending challenges."""
        page: JSONDict = await self._request("GET", "/v1/device/challenges")
        items: list[JSONDict] = page["items"]
        return items

    async def get_challenge(self, challenge_id: str) -> JSONDict:
        """``GET /v1/device/challenges/{id}`` (the first read marks it seen)."""
        challenge: JSONDict = await self._request("GET", _challenge_path(challenge_id))
        return challenge

    async def ack(self, challenge_id: str) -> None:
        """``POST .../ack``: report that the push arrived."""
        await self._request("POST", _challenge_path(challenge_id) + "/ack")

    async def respond(
        self,
        challenge_id: str,
        decision: Decision,
        number: str | None = None,
        *,
        nonce: str | None = None,
    ) -> JSONDict:
        """Sign ``decision`` (and ``number``) and POST it; returns the challenge view.

        The nonce is read from the challenge unless given.
        """
        if self.authenticator is None:
            raise RuntimeError("the device has no authenticator")
        if nonce is None:
            nonce = str((await self.get_challenge(challenge_id))["nonce"])
        body = sign_response_body(self.authenticator, nonce, decision, number)
        view: JSONDict = await self._request(
            "POST", _challenge_path(challenge_id) + "/response", body=body
        )
        return view

    async def update_push_token(
        self,
        platform: Platform,
        push_token: str | None = None,
        app_bundle_id: str | None = None,
    ) -> None:
        """``PUT /v1/device/push-token`` (None fields are left out)."""
        body: JSONDict = {
            "platform": platform,
            "push_token": push_token,
            "app_bundle_id": app_bundle_id,
        }
        body = {k: v for k, v in body.items() if v is not None}
        await self._request("PUT", "/v1/device/push-token", body=body)

    async def remove(self) -> None:
        """``DELETE /v1/device``: the account was removed in the app; forget the secret."""
        await self._request("DELETE", "/v1/device")
        self.credentials = None

    def websocket(self, *, heartbeat: float | None = None) -> DeviceSocket:
        """The in-app channel ``/v1/device/ws`` as an async iterator of JSON messages."""
        return DeviceSocket(self, heartbeat=heartbeat)


def _challenge_path(challenge_id: str) -> str:
    return "/v1/device/challenges/" + quote(challenge_id, safe="")


class DeviceSocket:
    """Messages of ``/v1/device/ws``; ends when the server closes.

    ``async with device.websocket() as ws: async for message in ws`` closes deterministically;
    plain ``async for`` connects on first use and closes when the stream ends.
    """

    def __init__(self, client: DeviceClient, *, heartbeat: float | None = None) -> None:
        """Prepare; nothing connects until entered or iterated."""
        self._client = client
        self._heartbeat = heartbeat
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._done = False

    @property
    def close_code(self) -> int | None:
        """The close code once the socket closed."""
        return self._ws.close_code if self._ws is not None else None

    async def connect(self) -> None:
        """Open the websocket with the device's credentials."""
        if self._ws is not None or self._done:
            return
        try:
            self._ws = await self._client.session.ws_connect(
                self._client.url("/v1/device/ws"),
                headers=self._client.auth_headers(),
                heartbeat=self._heartbeat,
            )
        except aiohttp.WSServerHandshakeError as exc:
            self._done = True
            problem = {"status": exc.status, "title": exc.message}
            raise DeviceApiError(exc.status, problem) from exc

    async def close(self) -> None:
        """Close the websocket (idempotent)."""
        self._done = True
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()

    async def __aenter__(self) -> DeviceSocket:
        """Connect."""
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close."""
        await self.close()

    def __aiter__(self) -> DeviceSocket:
        """Iterate over JSON object messages."""
        return self

    async def __anext__(self) -> JSONDict:
        """The next JSON object the server sent; non-object text frames are skipped."""
        await self.connect()
        ws = self._ws
        if ws is None or self._done:
            raise StopAsyncIteration
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT:
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                if isinstance(data, dict):
                    return data
        await self.close()
        raise StopAsyncIteration
