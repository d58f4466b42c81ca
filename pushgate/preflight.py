"""What ``serve`` and ``worker`` need beyond well-formed settings: required secrets, files that
exist and parse, origins the RP id covers. ``pushgate check`` reports every problem at once,
and ``serve`` and ``worker`` refuse to start on any of them."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from pushgate.settings import Settings

NATIVE_ORIGINS = ("android:apk-key-hash:", "ios:bundle-id:")


def _http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _readable(name: str, path: str) -> tuple[str | None, bytes]:
    try:
        return None, Path(path).read_bytes()
    except OSError as exc:
        return f"{name}: cannot read {path}: {exc.strerror or exc}", b""


def _apns(settings: Settings) -> list[str]:
    if not settings.apns_key_file:
        return []
    problem, pem = _readable("PUSHGATE_APNS_KEY_FILE", settings.apns_key_file)
    found = [problem] if problem else []
    if pem:
        try:
            key = load_pem_private_key(pem, password=None)
        except (ValueError, TypeError):
            key = None
        if not isinstance(key, EllipticCurvePrivateKey):
            found.append("PUSHGATE_APNS_KEY_FILE: not an APNs .p8 key (PEM, EC P-256)")
    for name, value in (
        ("PUSHGATE_APNS_KEY_ID", settings.apns_key_id),
        ("PUSHGATE_APNS_TEAM_ID", settings.apns_team_id),
        ("PUSHGATE_APNS_TOPIC", settings.apns_topic),
    ):
        if not value:
            found.append(f"{name}: required with PUSHGATE_APNS_KEY_FILE")
    return found


def _fcm(settings: Settings) -> list[str]:
    if not settings.fcm_credentials_file:
        return []
    problem, raw = _readable("PUSHGATE_FCM_CREDENTIALS_FILE", settings.fcm_credentials_file)
    if problem:
        return [problem]
    try:
        account = json.loads(raw)
    except ValueError:
        account = None
    wanted = ("type", "private_key", "client_email", "token_uri")
    if (
        not isinstance(account, dict)
        or account.get("type") != "service_account"
        or not all(account.get(k) for k in wanted)
    ):
        return ["PUSHGATE_FCM_CREDENTIALS_FILE: not a Google service-account JSON key"]
    if not (settings.fcm_project_id or account.get("project_id")):
        return ["PUSHGATE_FCM_PROJECT_ID: required (the credentials file names no project)"]
    return []


def _endpoints(settings: Settings) -> list[str]:
    found = []
    for name, endpoint, ca_file in (
        ("APNS", settings.apns_endpoint, settings.apns_ca_file),
        ("FCM", settings.fcm_endpoint, settings.fcm_ca_file),
    ):
        if endpoint and not _http_url(endpoint):
            found.append(f"PUSHGATE_{name}_ENDPOINT: must be an http:// or https:// URL")
        if ca_file:
            try:
                ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                found.append(f"PUSHGATE_{name}_CA_FILE: cannot load {ca_file}: {exc}")
    return found


def _webauthn(settings: Settings) -> list[str]:
    found = []
    rp_id = settings.webauthn_rp_id.lower()
    for origin in settings.origins:
        if origin.startswith(NATIVE_ORIGINS):
            continue
        if not _http_url(origin):
            found.append(f"PUSHGATE_WEBAUTHN_ORIGINS: {origin!r} is not an http(s) origin")
            continue
        host = (urlsplit(origin).hostname or "").lower()
        if host != rp_id and not host.endswith("." + rp_id):
            found.append(
                f"PUSHGATE_WEBAUTHN_RP_ID: {rp_id!r} does not cover the origin {origin!r} "
                "(it must be the origin's host or a parent domain of it)"
            )
    return found


def problems(settings: Settings) -> list[str]:
    """Every reason ``serve`` or ``worker`` would fail with these settings, each naming its
    variable; empty when they can start."""
    found = []
    if settings.redis_url is None:
        found.append("PUSHGATE_REDIS_URL: required (redis:// or rediss://)")
    if settings.secret_key is None:
        found.append(
            "PUSHGATE_SECRET_KEY: required (base64 of 32 random bytes), e.g. "
            "$(python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())')"
        )
    return found + _webauthn(settings) + _apns(settings) + _fcm(settings) + _endpoints(settings)
