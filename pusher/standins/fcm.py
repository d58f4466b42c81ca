"""A local FCM HTTP v1 API with its OAuth2 token endpoint, over TLS (HTTP/2 and HTTP/1.1).

- ``POST /token``: Google's JWT-bearer grant. The RS256 assertion must be signed by a
  trusted service account's key (``iss`` = its ``client_email``, ``aud`` a ``/token`` URL,
  a messaging or cloud-platform ``scope``, at most one hour long). Answers
  ``{"access_token", "expires_in", "token_type": "Bearer"}``; errors are OAuth's
  ``{"error": "invalid_grant", "error_description": ...}``. google-auth fetches tokens
  with ``requests``, i.e. over HTTP/1.1.
- ``POST /v1/projects/<project>/messages:send``: firebase-admin's async path (httpx,
  HTTP/2). Needs ``authorization: Bearer <token issued here>`` for the account's project,
  a ``message`` with exactly one of ``token`` / ``fid`` / ``topic`` / ``condition``,
  string-valued ``data``, a valid ``android`` block and at most 4096 bytes of data and
  notification text. Success is ``{"name": "projects/<p>/messages/<id>"}``; errors are
  Google's ``{"error": {"code", "message", "status", "details": [FcmError...]}}``.

Dead tokens (``faults.add_invalid_tokens``) get 404 ``UNREGISTERED``; a fault's ``reason``
is the FCM ``errorCode`` (``QUOTA_EXCEEDED``, ``UNAVAILABLE``, ``INTERNAL``, ...).
Only message sends are recorded; ``tokens_issued`` counts token grants.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from pusher.standins.app import Standin
from pusher.standins.credentials import ServiceAccount
from pusher.standins.faults import Fault
from pusher.standins.messages import Request, Response, parse_json

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPES = (
    "https://www.googleapis.com/auth/firebase.messaging",
    "https://www.googleapis.com/auth/cloud-platform",
)
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
MAX_MESSAGE_BYTES = 4096
GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
ERROR_MESSAGES = {
    "UNREGISTERED": "Requested entity was not found.",
    "INVALID_ARGUMENT": "Request contains an invalid argument.",
    "QUOTA_EXCEEDED": "Quota exceeded for quota metric 'Send messages' of service fcm.",
    "SENDER_ID_MISMATCH": "SenderId mismatch",
    "THIRD_PARTY_AUTH_ERROR": "Auth error from APNS or Web Push Service",
    "UNAVAILABLE": "The service is currently unavailable.",
    "INTERNAL": "Internal error encountered.",
}
_SEND_PATH = re.compile(r"/v1/projects/([^/]+)/messages:send")
_TARGETS = ("token", "fid", "topic", "condition")
_DEVICE_TOKEN = re.compile(r"[A-Za-z0-9_:\-]{8,4096}")
_TTL = re.compile(r"\d+(\.\d{1,9})?s")


class _Reject(Exception):
    def __init__(self, response: Response, reason: str) -> None:
        super().__init__(reason)
        self.response = response
        self.reason = reason


def google_error(
    code: int,
    error_code: str | None,
    message: str | None = None,
    details: list[dict[str, Any]] | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> Response:
    """Google's JSON error body; ``error_code`` becomes an FcmError detail."""
    all_details = [{"@type": FCM_ERROR, "errorCode": error_code}] if error_code else []
    all_details += details or []
    text = message or ERROR_MESSAGES.get(error_code or "", "Request failed.")
    body: dict[str, Any] = {"code": code, "message": text, "status": GOOGLE_STATUS.get(code, "")}
    if all_details:
        body["details"] = all_details
    return Response.of_json(code, {"error": body}, headers)


def _invalid(message: str, field: str | None = None) -> _Reject:
    details = None
    if field is not None:
        details = [
            {"@type": BAD_REQUEST, "fieldViolations": [{"field": field, "description": message}]}
        ]
    return _Reject(google_error(400, "INVALID_ARGUMENT", message, details), "INVALID_ARGUMENT")


def _grant_error(error: str, description: str) -> Response:
    return Response.of_json(400, {"error": error, "error_description": description})


@dataclass(frozen=True, slots=True)
class _Account:
    project_id: str
    public_key: RSAPublicKey


@dataclass(frozen=True, slots=True)
class _Grant:
    client_email: str
    project_id: str
    expires_at: float


class FcmStandin(Standin):
    """The FCM handler; serve it with :class:`pusher.standins.runner.StandinThread`."""

    name: ClassVar[str] = "fcm"

    def __init__(self, *, token_lifetime: int = 3600) -> None:
        super().__init__()
        self.token_lifetime = token_lifetime
        self.tokens_issued = 0
        self._lock = threading.Lock()
        self._accounts: dict[str, _Account] = {}
        self._grants: dict[str, _Grant] = {}

    def trust(self, account: ServiceAccount) -> None:
        """Grant tokens to ``account`` (verifying its assertions with its public key)."""
        self.add_service_account(account.client_email, account.project_id, account.public_pem)

    def add_service_account(self, client_email: str, project_id: str, public_pem: str) -> None:
        public_key = load_pem_public_key(public_pem.encode())
        if not isinstance(public_key, RSAPublicKey):
            raise ValueError("a service-account key is an RSA key")
        with self._lock:
            self._accounts[client_email] = _Account(project_id, public_key)

    def revoke_access_tokens(self) -> None:
        """Forget every issued access token (sends then get 401 UNAUTHENTICATED)."""
        with self._lock:
            self._grants.clear()

    async def handle_service(self, request: Request) -> Response:
        path = urlsplit(request.path).path
        if path == "/token" and request.method == "POST":
            return self._token(request)
        match = _SEND_PATH.fullmatch(path)
        if match is None or request.method != "POST":
            return google_error(404, None, f"The requested URL {path} was not found.")
        return await self._send(request, match.group(1))

    def _token(self, request: Request) -> Response:
        form = parse_qs(request.body.decode(errors="replace"))
        if form.get("grant_type", [""])[0] != JWT_BEARER:
            return _grant_error("unsupported_grant_type", "Invalid grant_type.")
        assertion = form.get("assertion", [""])[0]
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
            with self._lock:
                account = self._accounts.get(str(unverified.get("iss")))
            if account is None:
                return _grant_error("invalid_grant", "Invalid grant: account not found")
            claims = jwt.decode(
                assertion,
                account.public_key,
                algorithms=["RS256"],
                options={"require": ["iss", "aud", "iat", "exp"], "verify_aud": False},
            )
        except jwt.PyJWTError:
            return _grant_error("invalid_grant", "Invalid JWT Signature.")
        if not urlsplit(str(claims["aud"])).path.endswith("/token"):
            return _grant_error("invalid_grant", "Invalid JWT: audience is not a token URL.")
        if int(claims["exp"]) - int(claims["iat"]) > 3600:
            return _grant_error("invalid_grant", "Invalid JWT: Token must be a short-lived token.")
        if not set(str(claims.get("scope", "")).split()) & set(SCOPES):
            return _grant_error("invalid_scope", "Invalid OAuth scope or ID token audience.")
        token = "ya29.standin-" + secrets.token_urlsafe(32)
        grant = _Grant(str(claims["iss"]), account.project_id, time.time() + self.token_lifetime)
        with self._lock:
            self._grants[token] = grant
            self.tokens_issued += 1
        body = {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"}
        return Response.of_json(200, body)

    async def _send(self, request: Request, project: str) -> Response:
        body = parse_json(request.body)
        message = body.get("message") if isinstance(body, dict) else None
        target = ""
        if isinstance(message, dict):
            target = str(next((message[t] for t in _TARGETS if t in message), ""))
        fault: Fault | None = None
        response: Response
        try:
            self._check_auth(request, project)
            self._check_message(message)
            if self.faults.is_invalid(target):
                raise _Reject(google_error(404, "UNREGISTERED"), "UNREGISTERED")
            fault = self.faults.take(target)
            if fault is not None and not fault.hang:
                retry = (
                    ()
                    if fault.retry_after is None
                    else (("retry-after", str(int(fault.retry_after))),)
                )
                raise _Reject(
                    google_error(fault.status, fault.reason or None, headers=retry), fault.reason
                )
            name = f"projects/{project}/messages/0:{secrets.token_hex(8)}"
            response, reason = Response.of_json(200, {"name": name}), None
        except _Reject as reject:
            response, reason = reject.response, reject.reason
        if fault is not None and fault.hang:
            self.record(request, target, body, None, None)
            await self.pause(fault)
        await self.pause(None)
        self.record(request, target, body, response.status, reason)
        return response

    def _check_auth(self, request: Request, project: str) -> None:
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        with self._lock:
            grant = self._grants.get(token) if scheme.lower() == "bearer" else None
        if grant is None or grant.expires_at < time.time():
            message = "Request had invalid authentication credentials."
            raise _Reject(google_error(401, None, message), "UNAUTHENTICATED")
        if grant.project_id != project:
            message = f"Permission 'cloudmessaging.messages.create' denied on project {project}."
            raise _Reject(google_error(403, None, message), "PERMISSION_DENIED")

    def _check_message(self, message: Any) -> None:
        if not isinstance(message, dict):
            raise _invalid("Invalid JSON payload received. 'message' is required.")
        targets = [t for t in _TARGETS if t in message]
        if len(targets) != 1:
            raise _invalid("Exactly one of token, fid, topic or condition is required.")
        if targets[0] in ("token", "fid") and not _DEVICE_TOKEN.fullmatch(str(message[targets[0]])):
            raise _invalid(
                "The registration token is not a valid FCM registration token",
                f"message.{targets[0]}",
            )
        data = message.get("data", {})
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise _invalid(
                "Invalid value at 'message.data': values must be strings.", "message.data"
            )
        android = message.get("android", {})
        if not isinstance(android, dict):
            raise _invalid("Invalid value at 'message.android'.", "message.android")
        if "ttl" in android and not _TTL.fullmatch(str(android["ttl"])):
            raise _invalid("Invalid value at 'message.android.ttl'.", "message.android.ttl")
        if str(android.get("priority", "normal")).lower() not in ("normal", "high"):
            raise _invalid(
                "Invalid value at 'message.android.priority'.", "message.android.priority"
            )
        if _message_size(message) > MAX_MESSAGE_BYTES:
            raise _invalid("Message is too big.", "message")


def _message_size(message: dict[str, Any]) -> int:
    """Bytes FCM counts: data keys and values plus notification title and body."""
    data = message.get("data") or {}
    size = sum(len(str(k).encode()) + len(str(v).encode()) for k, v in data.items())
    for block in (message.get("notification"), (message.get("android") or {}).get("notification")):
        if isinstance(block, dict):
            size += sum(len(str(block.get(k, "")).encode()) for k in ("title", "body"))
    return size
