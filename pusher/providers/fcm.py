"""FCM router: firebase-admin's HTTP v1 async send through one named app per provider.

Each provider owns a firebase ``App`` (a unique name unless given), so several providers
(and tests) live side by side. ``endpoint`` overrides the send URL on this provider's own
messaging service (its ``_fcm_url``, set right after the service is built), so no class
attribute is changed and other apps keep Google's URL.

The provider keeps firebase-admin for building, sending and classifying messages but gives
its messaging service an httpx client of its own:

- no retries inside the client (firebase-admin's default re-sends 500/503 up to 4 times over
  several seconds without asking whether the prompt is still wanted): one ``send`` is one
  attempt and the delivery loop owns every retry;
- ``ca_file`` trusted by every call: the sends, and the OAuth token refreshes, which go
  through this provider's own ``requests`` session instead of google-auth's default one;
- the access token applied from the credential and refreshed only here, off the event loop
  (google-auth refreshes with blocking HTTP): a few minutes ahead of expiry, and at once
  after a 401 (the send then reports RETRY so the next attempt carries the new token);
- an attempt cut by its time bound closes the client's connections, since httpx cannot
  abandon a single HTTP/2 stream; FCM then never accepts a prompt the worker gave up on.
"""

from __future__ import annotations

import asyncio
import datetime
import ssl
import time
import uuid
import warnings
from collections.abc import Generator
from pathlib import Path
from typing import Any, Literal

import firebase_admin
import google.auth.exceptions
import google.auth.transport.requests
import httpx
from firebase_admin import credentials, exceptions, messaging

from pusher.payloads import FcmFields, fcm_fields, retry_after_seconds
from pusher.providers.base import PushMessage, SendOutcome, SendResult
from pushgate.logs import get_logger

log = get_logger("pusher.providers.fcm")

REFRESH_AHEAD = datetime.timedelta(minutes=5)  # > google-auth's own 3m45s threshold
TOKEN_FIELDS = frozenset({"message.token", "message.fid"})
RETRY_ERRORS = (
    exceptions.ResourceExhaustedError,  # 429, QuotaExceededError
    exceptions.UnavailableError,  # 503 and connection failures
    exceptions.InternalError,  # 500
    exceptions.DeadlineExceededError,  # httpx timeouts
    exceptions.UnauthenticatedError,  # 401: the token is refreshed before the next attempt
)


def _token_rejected(exc: exceptions.FirebaseError) -> bool:
    """Whether an INVALID_ARGUMENT answer is about the registration token itself."""
    if "registration token" in str(exc):
        return True
    body = _error_body(exc)
    for detail in body.get("details", []):
        for violation in detail.get("fieldViolations", []):
            if violation.get("field") in TOKEN_FIELDS:
                return True
    return False


def _outcome(exc: exceptions.FirebaseError) -> SendOutcome:
    if isinstance(exc, (messaging.UnregisteredError, messaging.SenderIdMismatchError)):
        return SendOutcome.INVALID_TOKEN
    if isinstance(exc, exceptions.InvalidArgumentError) and _token_rejected(exc):
        return SendOutcome.INVALID_TOKEN
    if isinstance(exc, RETRY_ERRORS):
        return SendOutcome.RETRY
    if isinstance(exc, exceptions.UnknownError) and isinstance(exc.cause, httpx.HTTPError):
        return SendOutcome.RETRY  # connection reset, HTTP/2 protocol error
    return SendOutcome.FAILED


def _error_body(exc: exceptions.FirebaseError) -> dict[str, Any]:
    response = exc.http_response
    if response is None:
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _fcm_error_code(exc: exceptions.FirebaseError) -> str:
    for detail in _error_body(exc).get("details", []):
        if str(detail.get("@type", "")).endswith("FcmError") and detail.get("errorCode"):
            return str(detail["errorCode"])
    return str(exc.code)


class _AccessToken(httpx.Auth):
    """Applies the credential's current access token; refreshing is the provider's job."""

    def __init__(self, credential: Any) -> None:
        self._credential = credential

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._credential.token}"
        yield request


class FcmProvider:
    """Sends pushes through FCM HTTP v1 with one firebase app created in :meth:`start`."""

    name = "fcm"

    def __init__(
        self,
        *,
        service_account_file: str | Path,
        project_id: str | None = None,
        endpoint: str | None = None,
        ca_file: str | Path | None = None,
        timeout: float = 10.0,
        target_field: Literal["token", "fid"] = "token",
        app_name: str | None = None,
    ) -> None:
        self._service_account_file = str(service_account_file)
        self._project_id = project_id
        self._endpoint = endpoint.rstrip("/") if endpoint else None
        self._ca_file = None if ca_file is None else str(ca_file)
        self._timeout = timeout
        self._target_field = target_field
        self._app_name = app_name or f"pushgate-fcm-{uuid.uuid4().hex[:12]}"
        self._app: Any = None
        self._service: Any = None
        self._credential: Any = None
        self._auth_request: google.auth.transport.requests.Request | None = None
        self._refresh_lock = asyncio.Lock()

    async def start(self) -> None:
        """Create the firebase app and its messaging service, and fetch a first token."""
        if self._app is not None:
            return
        certificate = await asyncio.to_thread(credentials.Certificate, self._service_account_file)
        options: dict[str, Any] = {"httpTimeout": self._timeout}
        if self._project_id:
            options["projectId"] = self._project_id
        app = firebase_admin.initialize_app(certificate, options, name=self._app_name)
        service = messaging._get_messaging_service(app)
        if self._endpoint:
            service._fcm_url = f"{self._endpoint}/v1/projects/{service._project_id}/messages:send"
        self._auth_request = google.auth.transport.requests.Request()
        if self._ca_file:
            # trust_env off, or REQUESTS_CA_BUNDLE from the environment would win over verify.
            self._auth_request.session.trust_env = False
            self._auth_request.session.verify = self._ca_file
        self._app, self._service = app, service
        self._credential = service._credential
        await self._replace_client()
        try:
            await self._fresh_token()
        except google.auth.exceptions.GoogleAuthError as exc:
            log.warning("fcm_token_fetch_failed", error=repr(exc), retry="on send")

    async def _replace_client(self) -> None:
        """Give the messaging service a fresh httpx client (see the module docstring) and close
        the old one, cutting whatever it still had in flight."""
        wrapper = self._service._async_client
        old: httpx.AsyncClient = wrapper._async_client
        verify: ssl.SSLContext | bool = True
        if self._ca_file:
            verify = ssl.create_default_context(cafile=self._ca_file)
        wrapper._async_client = httpx.AsyncClient(
            http2=True,
            timeout=self._timeout,
            headers=wrapper._headers,
            auth=_AccessToken(self._credential),
            transport=httpx.AsyncHTTPTransport(http2=True, verify=verify, retries=0),
        )
        await old.aclose()

    async def close(self) -> None:
        """Close the httpx client and delete the firebase app."""
        app, service, self._app, self._service = self._app, self._service, None, None
        if service is not None:
            await service._async_client.aclose()
        if app is not None:
            # delete_app closes services with asyncio.run(), which needs a loop-free thread.
            await asyncio.to_thread(firebase_admin.delete_app, app)
        if self._auth_request is not None:
            self._auth_request.session.close()
            self._auth_request = None

    async def _fresh_token(self, rejected: str | None = None) -> None:
        """Refresh the access token off the loop when it is missing, close to expiry, or the
        one FCM just ``rejected`` (401)."""
        if self._token_is_fresh() and self._credential.token != rejected:
            return
        async with self._refresh_lock:
            if not self._token_is_fresh() or self._credential.token == rejected:
                await asyncio.to_thread(self._credential.refresh, self._auth_request)

    def _token_is_fresh(self) -> bool:
        cred = self._credential
        if cred is None or not cred.token or cred.expiry is None:
            return False
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        left: datetime.timedelta = cred.expiry - now
        return left > REFRESH_AHEAD

    def _message(self, token: str, fields: FcmFields) -> Any:
        android = messaging.AndroidConfig(
            priority=fields.priority,
            ttl=fields.ttl,
            collapse_key=fields.collapse_key,
            notification=messaging.AndroidNotification(tag=fields.collapse_key),
        )
        parts: dict[str, Any] = {
            "data": fields.data,
            "notification": messaging.Notification(title=fields.title, body=fields.body),
            "android": android,
        }
        if self._target_field == "fid":
            return messaging.Message(fid=token, **parts)
        with warnings.catch_warnings():
            # 7.x deprecates ``token`` for ``fid``; stored devices hold registration tokens.
            warnings.simplefilter("ignore", DeprecationWarning)
            return messaging.Message(token=token, **parts)

    async def send(self, message: PushMessage, limit: float | None = None) -> SendResult:
        """One attempt, bounded by the timeout; never raises for FCM errors."""
        if self._app is None:
            return SendResult(SendOutcome.FAILED, self.name, reason="provider not started")
        try:
            fcm_message = self._message(message.token, fcm_fields(message))
        except ValueError as exc:
            return SendResult(SendOutcome.FAILED, self.name, reason=str(exc))
        bound = self._timeout if limit is None else min(self._timeout, limit)
        client = self._service._async_client._async_client
        try:
            async with asyncio.timeout(bound):
                await self._fresh_token()
                token = self._credential.token
                batch = await messaging.send_each_async([fcm_message], app=self._app)
        except TimeoutError:
            if self._service._async_client._async_client is client:
                await self._replace_client()
            return SendResult(SendOutcome.RETRY, self.name, reason="timeout")
        except google.auth.exceptions.GoogleAuthError as exc:
            return self._auth_failure(exc)
        except exceptions.FirebaseError as exc:
            return self._failure(exc)
        except Exception as exc:
            log.warning("fcm_send_failed", error=repr(exc))
            return SendResult(SendOutcome.RETRY, self.name, reason=type(exc).__name__)
        response = batch.responses[0]
        if response.success:
            return SendResult(
                SendOutcome.DELIVERED, self.name, status=200, provider_id=response.message_id
            )
        if isinstance(response.exception, exceptions.UnauthenticatedError):
            try:
                await self._fresh_token(rejected=token)
            except google.auth.exceptions.GoogleAuthError as exc:
                return self._auth_failure(exc)
        return self._failure(response.exception)

    def _auth_failure(self, exc: google.auth.exceptions.GoogleAuthError) -> SendResult:
        transient = isinstance(exc, google.auth.exceptions.TransportError) or getattr(
            exc, "retryable", False
        )
        outcome = SendOutcome.RETRY if transient else SendOutcome.FAILED
        log.warning("fcm_token_refresh_failed", error=repr(exc))
        return SendResult(outcome, self.name, reason=f"token refresh: {type(exc).__name__}")

    def _failure(self, exc: exceptions.FirebaseError) -> SendResult:
        response = exc.http_response
        status = response.status_code if response is not None else None
        retry_after = None
        if response is not None:
            retry_after = retry_after_seconds(response.headers.get("retry-after"), time.time())
        outcome = _outcome(exc)
        reason = _fcm_error_code(exc)
        if outcome is SendOutcome.FAILED:
            log.warning("fcm_rejected", status=status, reason=reason, error=str(exc))
        return SendResult(outcome, self.name, status=status, reason=reason, retry_after=retry_after)
