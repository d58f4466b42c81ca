"""Reference device client: a software WebAuthn authenticator and a device API client.

Importing this package (or :mod:`pushgate.devicekit.authenticator`) never imports aiohttp;
:class:`DeviceClient` and :class:`DeviceSocket` load :mod:`pushgate.devicekit.client` on
first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pushgate.devicekit.answers import sign_response_body
from pushgate.devicekit.authenticator import AuthenticatorError, SoftAuthenticator
from pushgate.devicekit.enrollment import (
    DeviceCredentials,
    Platform,
    enroll_body,
    parse_enroll_url,
)
from pushgate.devicekit.errors import DeviceApiError

if TYPE_CHECKING:
    from pushgate.devicekit.client import DeviceClient, DeviceSocket

__all__ = [
    "AuthenticatorError",
    "DeviceApiError",
    "DeviceClient",
    "DeviceCredentials",
    "DeviceSocket",
    "Platform",
    "SoftAuthenticator",
    "enroll_body",
    "parse_enroll_url",
    "sign_response_body",
]

_LAZY = frozenset({"DeviceClient", "DeviceSocket"})


def __getattr__(name: str) -> Any:
    """Load the aiohttp client only when it is asked for."""
    if name in _LAZY:
        from pushgate.devicekit import client

        return getattr(client, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
