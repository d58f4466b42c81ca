"""Enrollment pieces without I/O: the enroll link, the enroll body and device credentials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from pushgate.devicekit.authenticator import JSONDict, SoftAuthenticator

Platform = Literal["apns", "fcm", "none"]
DEFAULT_DEVICE_NAME = "pushgate devicekit"


def parse_enroll_url(url: str) -> tuple[str, str]:
    """Split ``pushgate://enroll?server=...&code=...`` into ``(server, code)``."""
    parts = urlsplit(url)
    if parts.scheme != "pushgate" or parts.netloc != "enroll":
        raise ValueError("not a pushgate://enroll link")
    query = parse_qs(parts.query)
    servers, codes = query.get("server", []), query.get("code", [])
    if len(servers) != 1 or len(codes) != 1:
        raise ValueError("the enroll link needs exactly one server and one code")
    server = servers[0].rstrip("/")
    if urlsplit(server).scheme not in ("http", "https"):
        raise ValueError("the enroll link's server must be an http(s) URL")
    return server, codes[0]


def enroll_body(
    authenticator: SoftAuthenticator,
    code: str,
    options: JSONDict,
    *,
    platform: Platform = "none",
    push_token: str | None = None,
    app_bundle_id: str | None = None,
    device_name: str = DEFAULT_DEVICE_NAME,
) -> JSONDict:
    """Register with ``options`` and build the ``POST /v1/device/enroll`` body (None omitted)."""
    body: JSONDict = {
        "code": code,
        "credential": authenticator.register(options),
        "platform": platform,
        "push_token": push_token,
        "app_bundle_id": app_bundle_id,
        "device_name": device_name,
    }
    return {k: v for k, v in body.items() if v is not None}


@dataclass(frozen=True)
class DeviceCredentials:
    """The device id and secret issued once at enrollment."""

    device_id: str
    device_secret: str

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value for device requests."""
        return f"Device {self.device_id}.{self.device_secret}"

    def to_json(self) -> dict[str, str]:
        """Serialise for storage next to the authenticator."""
        return {"device_id": self.device_id, "device_secret": self.device_secret}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeviceCredentials:
        """Read the enroll answer or a stored copy."""
        return cls(device_id=str(data["device_id"]), device_secret=str(data["device_secret"]))

    def __repr__(self) -> str:
        """Never show the secret."""
        return f"DeviceCredentials(device_id={self.device_id!r})"
