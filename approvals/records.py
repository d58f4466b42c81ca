"""Typed challenge and device records: the one place that knows their Redis hash fields.

The store reads a hash and hands out these records; everything above it reads attributes
(ints, bools, the parsed context), never a hash field. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Hash = Mapping[str, str]


def parse_context(raw: str | None) -> dict[str, Any]:
    """A challenge's ``ctx`` JSON as a dict (anything but a JSON object reads as empty)."""
    value = json.loads(raw or "{}")
    return value if isinstance(value, dict) else {}


def _ms(raw: str | None) -> int | None:
    """An epoch-milliseconds field: None when absent or empty."""
    return int(raw) if raw else None


@dataclass(frozen=True, slots=True)
class ChallengeRecord:
    """One challenge as stored (SPEC §3). Times are epoch milliseconds; None = not yet.

    Hash fields: ``id tenant user_id resource app_name ctx nm number nonce status created_at
    expires_at devices sent_at delivered_at seen_at push_error decided_at method device_id
    reason`` (delivery attempt fields stay with the delivery scripts)."""

    id: str
    tenant: str = ""
    user_id: str = ""
    resource: str = ""
    app_name: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    number_matching: bool = False
    number: str = field(default="", repr=False)
    nonce: str = field(default="", repr=False)
    status: str = "pending"
    created_at_ms: int | None = None
    expires_at_ms: int = 0
    devices: int = 0
    sent_at_ms: int | None = None
    delivered_at_ms: int | None = None
    seen_at_ms: int | None = None
    push_error: str = ""
    decided_at_ms: int | None = None
    method: str = ""
    device_id: str = ""
    reason: str = ""

    @classmethod
    def from_hash(cls, h: Hash, context: dict[str, Any] | None = None) -> ChallengeRecord:
        """The record of a challenge hash (or of the record fields a script published).
        ``context``: the parsed ``ctx`` when the caller has it already (the create path)."""
        get = h.get
        ms = _ms
        return cls(
            id=get("id", ""),
            tenant=get("tenant", ""),
            user_id=get("user_id", ""),
            resource=get("resource", ""),
            app_name=get("app_name", ""),
            context=parse_context(get("ctx")) if context is None else context,
            number_matching=get("nm") == "1",
            number=get("number", ""),
            nonce=get("nonce", ""),
            status=get("status") or "pending",
            created_at_ms=ms(get("created_at")),
            expires_at_ms=ms(get("expires_at")) or 0,
            devices=int(get("devices") or 0),
            sent_at_ms=ms(get("sent_at")),
            delivered_at_ms=ms(get("delivered_at")),
            seen_at_ms=ms(get("seen_at")),
            push_error=get("push_error", ""),
            decided_at_ms=ms(get("decided_at")),
            method=get("method", ""),
            device_id=get("device_id", ""),
            reason=get("reason", ""),
        )


def as_challenge(record: ChallengeRecord | Hash) -> ChallengeRecord:
    """A challenge record, read from its hash fields when given those."""
    return record if isinstance(record, ChallengeRecord) else ChallengeRecord.from_hash(record)


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """One enrolled device (SPEC §4). Times are epoch milliseconds; None = never."""

    id: str
    tenant: str
    user_id: str
    platform: str = ""
    push_token: str = field(default="", repr=False)
    token_valid: bool = False
    app_bundle_id: str = ""
    name: str = ""
    credential_id: str = ""
    public_key: str = field(default="", repr=False)
    sign_count: int = 0
    secret_digest: str = field(default="", repr=False)
    created_at_ms: int | None = None
    last_used_at_ms: int | None = None

    @classmethod
    def from_hash(cls, h: Hash) -> DeviceRecord:
        """The record of a device hash."""
        return cls(
            id=h.get("id", ""),
            tenant=h.get("tenant", ""),
            user_id=h.get("user_id", ""),
            platform=h.get("platform", ""),
            push_token=h.get("push_token", ""),
            token_valid=h.get("token_valid") == "1",
            app_bundle_id=h.get("app_bundle_id", ""),
            name=h.get("name", ""),
            credential_id=h.get("credential_id", ""),
            public_key=h.get("public_key", ""),
            sign_count=int(h.get("sign_count") or 0),
            secret_digest=h.get("secret_digest", ""),
            created_at_ms=_ms(h.get("created_at")),
            last_used_at_ms=_ms(h.get("last_used_at")),
        )

    def to_hash(self) -> dict[str, str]:
        """The hash a new device is stored as (``last_used_at`` is set by its first answer)."""
        return {
            "id": self.id,
            "tenant": self.tenant,
            "user_id": self.user_id,
            "platform": self.platform,
            "push_token": self.push_token,
            "token_valid": "1" if self.token_valid else "0",
            "app_bundle_id": self.app_bundle_id,
            "name": self.name,
            "credential_id": self.credential_id,
            "public_key": self.public_key,
            "sign_count": str(self.sign_count),
            "secret_digest": self.secret_digest,
            "created_at": "" if self.created_at_ms is None else str(self.created_at_ms),
        }
