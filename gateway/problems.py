"""The one error writer: RFC 9457 problem+json with a stable code from one table."""

from __future__ import annotations

import json
from typing import Any, Final

from aiohttp import web

PROBLEM_TYPE_BASE: Final = "https://pushgate.dev/problems/"

#: code -> (HTTP status, title). The codes are part of the API contract.
CODES: Final[dict[str, tuple[int, str]]] = {
    "invalid_request": (422, "The request is invalid"),
    "unauthorized": (401, "Authentication required"),
    "forbidden": (403, "Not allowed for this key"),
    "not_found": (404, "Not found"),
    "no_push_device": (409, "The user has no active push device"),
    "push_throttled": (429, "Too many push requests"),
    "push_blocked": (423, "Pushes are blocked for this user"),
    "user_locked": (423, "The user is locked"),
    "challenge_already_decided": (409, "The challenge was already decided"),
    "challenge_expired": (410, "The challenge expired"),
    "code_invalid": (422, "The code is invalid"),
    "code_malformed": (422, "The code is malformed"),
    "code_replayed": (422, "The code was already used"),
    "enrollment_code_invalid": (422, "The enrollment code is invalid or used"),
    "webauthn_invalid": (422, "The WebAuthn response is invalid"),
    "invalid_policy": (422, "The policy is invalid"),
    "payload_too_large": (413, "The request body is too large"),
    "backend_unavailable": (503, "The backend is unavailable"),
    "internal": (500, "Internal error"),
}


class ProblemError(Exception):
    """Raise from any handler to answer with a problem document."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        status: int | None = None,
        **extra: Any,
    ) -> None:
        if code not in CODES:
            raise ValueError(f"unknown problem code {code!r}")
        super().__init__(detail)
        self.code = code
        self.status = status or CODES[code][0]
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem_body(
    code: str, detail: str, request_id: str, status: int | None = None, **extra: Any
) -> dict[str, Any]:
    """The JSON document of a problem."""
    default_status, title = CODES[code]
    status = status or default_status
    return {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": request_id,
        **extra,
    }


def problem_response(error: ProblemError, request_id: str) -> web.Response:
    """Render a ProblemError as an ``application/problem+json`` response."""
    body = problem_body(error.code, error.detail, request_id, error.status, **error.extra)
    return web.Response(
        status=error.status,
        text=json.dumps(body),  # the standard library's spacing, byte for byte as before
        content_type="application/problem+json",
        headers=error.headers,
    )
