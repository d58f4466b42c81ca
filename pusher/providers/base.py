"""The one small interface every push provider implements."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal, Protocol

PushKind = Literal["challenge", "ended"]


@dataclass(frozen=True, slots=True)
class PushMessage:
    """One notification for one device, built from a challenge record.

    ``kind == "challenge"`` is the sign-in prompt; ``kind == "ended"`` is the follow-up
    that replaces the prompt (same collapse id) once the challenge was answered elsewhere.
    """

    kind: PushKind
    device_id: str
    platform: Literal["apns", "fcm"]
    token: str
    topic: str  # APNs topic (app bundle id); FCM ignores it
    challenge_id: str
    tenant: str
    app_name: str
    location: str
    expires_at: int  # epoch seconds
    now: int  # epoch seconds when the message was built (for ttl)
    status: str = "pending"  # final status for kind == "ended"


class SendOutcome(enum.StrEnum):
    """What a send attempt means for the delivery loop."""

    DELIVERED = "delivered"  # provider accepted the message
    RETRY = "retry"  # transient: 429, 5xx, timeout, connection loss
    INVALID_TOKEN = "invalid_token"  # noqa: S105 - an outcome name, not a password  # permanent: the device token is dead
    FAILED = "failed"  # permanent for this message (bad payload, auth), do not retry


@dataclass(frozen=True, slots=True)
class SendResult:
    """The result of one send attempt; never a bare boolean."""

    outcome: SendOutcome
    provider: str
    status: int | None = None  # HTTP status from the provider, if any
    reason: str | None = None  # provider's reason string ("BadDeviceToken", "UNREGISTERED")
    retry_after: float | None = None  # seconds, when the provider said so
    provider_id: str | None = None  # apns-id / FCM message name


class PushProvider(Protocol):
    """A router for one push service (APNs, FCM). One long-lived client per worker."""

    name: str

    async def start(self) -> None:
        """Open long-lived clients inside the running event loop."""

    async def send(self, message: PushMessage, limit: float | None = None) -> SendResult:
        """Make exactly one attempt (no retries of the client library's own), bounded by
        ``limit`` seconds (or the provider's timeout, whichever is shorter); an attempt cut
        by the bound is abandoned so the provider does not accept it later. Never raises for
        provider errors."""

    async def close(self) -> None:
        """Release clients and connections."""
