"""Authentication: portal/admin API keys, device credentials and per-challenge watch tokens."""

from __future__ import annotations

import base64
import hmac
from typing import Literal

from aiohttp import web

from approvals.ids import digest
from approvals.records import DeviceRecord
from approvals.store.tenants import ApiKeyIdentity
from gateway.problems import ProblemError
from gateway.services import services

Role = Literal["portal", "admin"]


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


async def optional_api_key(request: web.Request) -> ApiKeyIdentity | None:
    """The caller's API key identity, or None when no bearer key was sent."""
    key = _bearer(request)
    if key is None:
        return None
    if len(key) > 256:
        raise ProblemError("unauthorized", "unknown or revoked API key")
    identity = await services(request).auth_cache.identify(key)
    if identity is None:
        raise ProblemError("unauthorized", "unknown or revoked API key")
    return identity


async def require_key(request: web.Request, role: Role = "portal") -> ApiKeyIdentity:
    """The caller's identity; 401 without a valid key, 403 when the role is too small."""
    identity = await optional_api_key(request)
    if identity is None:
        raise ProblemError(
            "unauthorized",
            "send an API key as 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": 'Bearer realm="pushgate"'},
        )
    if role == "admin" and identity.role != "admin":
        raise ProblemError("forbidden", "this route needs an admin key")
    return identity


async def require_device(request: web.Request) -> DeviceRecord:
    """The calling device's record; 401 unless ``Device <id>.<secret>`` matches."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    device_id, _, secret = value.strip().partition(".")
    if scheme.lower() != "device" or not device_id or not secret or len(value) > 512:
        raise ProblemError(
            "unauthorized",
            "send device credentials as 'Authorization: Device <device_id>.<device_secret>'",
            headers={"WWW-Authenticate": 'Device realm="pushgate"'},
        )
    record = await services(request).devices.get(device_id)
    stored = record.secret_digest if record else ""
    if record is None or not hmac.compare_digest(stored.encode(), digest(secret).encode()):
        raise ProblemError("unauthorized", "unknown device or wrong device secret")
    return record


def watch_token(secret_key: bytes, challenge_id: str) -> str:
    """The watch token of one challenge: an HMAC, so it can be re-issued and never stored."""
    mac = hmac.digest(secret_key, f"pushgate/watch|{challenge_id}".encode(), "sha256")  # one-shot C
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def watch_token_valid(secret_key: bytes, challenge_id: str, given: str) -> bool:
    """Constant-time check of a watch token for exactly this challenge."""
    return hmac.compare_digest(watch_token(secret_key, challenge_id).encode(), given.encode())
