"""A local APNs provider API: HTTP/2 over TLS, token (JWT) auth, Apple's answers.

``POST /3/device/<token>`` is checked the way Apple documents it: the ``authorization:
bearer <JWT>`` ES256 signature against the trusted team keys (``kid`` -> team, ``iss`` must
be that team, ``iat`` at most an hour old), ``apns-topic``, ``apns-push-type``,
``apns-priority``, ``apns-expiration``, ``apns-collapse-id`` (<= 64 bytes), ``apns-id``
and a JSON payload of at most 4096 bytes. Success is ``200`` with the ``apns-id`` echoed
(generated when absent); errors are ``{"reason": ...}`` (plus ``timestamp`` in ms for 410),
always with ``apns-id`` too, since aioapns matches answers by it.

Like Apple with token auth, a new connection advertises MAX_CONCURRENT_STREAMS=1 and
raises it (to 1000) once a request carried a valid provider token; a client opening more
streams than advertised gets a GOAWAY. HTTP/1.1 is only served for the control API
(``pusher.standins.app``); a push over HTTP/1.1 gets 505 ``HTTP2Required``.

In-process use::

    standin = ApnsStandin()
    standin.trust(apns_key)                      # an ApnsKey from credentials.make_apns_key()
    thread = StandinThread(standin, make_tls(tmp)); port = thread.start()
    standin.faults.fail_next(429, "TooManyRequests", retry_after=3)
    standin.faults.add_invalid_tokens(token)     # -> 410 Unregistered
    standin.received.all()                       # [Received(...), ...]
    thread.stop()
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from h2.settings import SettingCodes

from pusher.standins.app import Standin
from pusher.standins.credentials import ApnsKey
from pusher.standins.faults import Fault
from pusher.standins.messages import Request, Response, parse_json

MAX_PAYLOAD = 4096
MAX_COLLAPSE_ID = 64
TOKEN_MAX_AGE = 3600
PUSH_TYPES = frozenset(
    [
        "alert",
        "background",
        "voip",
        "complication",
        "fileprovider",
        "mdm",
        "liveactivity",
        "location",
        "pushtotalk",
        "widgets",
        "controls",
    ]
)
_PATH = re.compile(r"/3/device/([^/?]*)")
_TOKEN = re.compile(r"[0-9a-fA-F]{64,200}")
_APNS_ID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_UNIQUE_HEADERS = (
    "apns-id",
    "apns-topic",
    "apns-push-type",
    "apns-priority",
    "apns-expiration",
    "apns-collapse-id",
    "authorization",
)


class _Reject(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _TeamKey:
    team_id: str
    public_key: EllipticCurvePublicKey


class ApnsStandin(Standin):
    """The APNs handler; serve it with :class:`pusher.standins.runner.StandinThread`."""

    name: ClassVar[str] = "apns"

    def __init__(
        self,
        *,
        topics: Collection[str] | None = None,
        initial_max_streams: int = 1,
        max_streams: int = 1000,
    ) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._keys: dict[str, _TeamKey] = {}
        self._verified: dict[str, tuple[str, int]] = {}  # JWT -> (kid, iat)
        self._topics = None if topics is None else set(topics)
        self._initial_max_streams = initial_max_streams
        self._max_streams = max_streams

    @property
    def h2_settings(self) -> Mapping[SettingCodes, int]:
        return {SettingCodes.MAX_CONCURRENT_STREAMS: self._initial_max_streams}

    def trust(self, key: ApnsKey) -> None:
        """Accept provider tokens signed by ``key`` (its public half)."""
        self.add_key(key.key_id, key.team_id, key.public_pem)

    def add_key(self, key_id: str, team_id: str, public_pem: str) -> None:
        """Accept provider tokens with ``kid`` = ``key_id`` from ``team_id``."""
        public_key = load_pem_public_key(public_pem.encode())
        if not isinstance(public_key, EllipticCurvePublicKey):
            raise ValueError("an APNs key is an EC P-256 key")
        with self._lock:
            self._keys[key_id] = _TeamKey(team_id, public_key)
            self._verified.clear()

    def revoke_key(self, key_id: str) -> None:
        """Stop accepting ``key_id`` (its tokens then get 403 InvalidProviderToken)."""
        with self._lock:
            self._keys.pop(key_id, None)
            self._verified.clear()

    async def handle_service(self, request: Request) -> Response:
        apns_id = request.header("apns-id") or str(uuid.uuid4()).upper()
        match = _PATH.fullmatch(request.path)
        token = match.group(1) if match else ""
        payload = parse_json(request.body)
        fault: Fault | None = None
        try:
            self._check(request, match is not None, token, payload)
            if self.faults.is_invalid(token):
                raise _Reject(410, "Unregistered")
            fault = self.faults.take(token)
        except _Reject as reject:
            fault = Fault(reject.status, reject.reason)
        if fault is not None and fault.hang:
            self.record(request, token, payload, None, None)
            await self.pause(fault)
        status = fault.status if fault is not None else 200
        reason = fault.reason if fault is not None else None
        await self.pause(None)
        self.record(request, token, payload, status, reason)
        headers = [("apns-id", apns_id)]
        if fault is None:
            return Response(200, tuple(headers))
        if fault.retry_after is not None:
            headers.append(("retry-after", str(int(fault.retry_after))))
        body: dict[str, Any] = {"reason": fault.reason}
        if fault.status == 410:
            body["timestamp"] = int(time.time() * 1000)
        return Response.of_json(fault.status, body, headers)

    def _check(self, request: Request, path_ok: bool, token: str, payload: Any) -> None:
        """Validate one push request like Apple; raise _Reject for the first problem."""
        if not path_ok:
            raise _Reject(404, "BadPath")
        if request.method != "POST":
            raise _Reject(405, "MethodNotAllowed")
        if request.http_version != "2":
            raise _Reject(505, "HTTP2Required")
        for name in _UNIQUE_HEADERS:
            if sum(1 for k, _ in request.headers if k == name) > 1:
                raise _Reject(400, "DuplicateHeaders")
        self._check_auth(request)
        headers = request.header_map()
        topic = headers.get("apns-topic")
        if not topic:
            raise _Reject(400, "MissingTopic")
        if self._topics is not None and topic not in self._topics:
            raise _Reject(400, "TopicDisallowed")
        if "apns-id" in headers and not _APNS_ID.fullmatch(headers["apns-id"]):
            raise _Reject(400, "BadMessageId")
        push_type = headers.get("apns-push-type")
        if push_type is not None and push_type not in PUSH_TYPES:
            raise _Reject(400, "InvalidPushType")
        priority = headers.get("apns-priority")
        if priority is not None and priority not in ("1", "5", "10"):
            raise _Reject(400, "BadPriority")
        if push_type == "background" and priority == "10":
            raise _Reject(400, "BadPriority")
        expiration = headers.get("apns-expiration")
        if expiration is not None and not expiration.isdigit():
            raise _Reject(400, "BadExpirationDate")
        if len(headers.get("apns-collapse-id", "").encode()) > MAX_COLLAPSE_ID:
            raise _Reject(400, "BadCollapseId")
        if not token:
            raise _Reject(400, "MissingDeviceToken")
        if not _TOKEN.fullmatch(token):
            raise _Reject(400, "BadDeviceToken")
        if not request.body:
            raise _Reject(400, "PayloadEmpty")
        if len(request.body) > MAX_PAYLOAD:
            raise _Reject(413, "PayloadTooLarge")
        if not isinstance(payload, dict):
            raise _Reject(400, "BadPayload")

    def _check_auth(self, request: Request) -> None:
        authorization = request.header("authorization")
        if not authorization:
            raise _Reject(403, "MissingProviderToken")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _Reject(403, "InvalidProviderToken")
        with self._lock:
            known = self._verified.get(token)
        if known is None:
            known = self._verify(token)
        if time.time() - known[1] > TOKEN_MAX_AGE:
            raise _Reject(403, "ExpiredProviderToken")
        notes = request.connection.notes
        if not notes.get("authenticated"):
            notes["authenticated"] = True
            request.connection.set_max_concurrent_streams(self._max_streams)

    def _verify(self, token: str) -> tuple[str, int]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _Reject(403, "InvalidProviderToken") from None
        kid = header.get("kid")
        with self._lock:
            team_key = self._keys.get(kid) if isinstance(kid, str) else None
        if header.get("alg") != "ES256" or team_key is None:
            raise _Reject(403, "InvalidProviderToken")
        try:
            claims = jwt.decode(
                token,
                team_key.public_key,
                algorithms=["ES256"],
                options={"require": ["iss", "iat"], "verify_exp": False},
            )
        except jwt.PyJWTError:
            raise _Reject(403, "InvalidProviderToken") from None
        if claims.get("iss") != team_key.team_id:
            raise _Reject(403, "InvalidProviderToken")
        known = (str(kid), int(claims["iat"]))
        with self._lock:
            if len(self._verified) > 1024:
                self._verified.clear()
            self._verified[token] = known
        return known
