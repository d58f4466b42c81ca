"""Settings from ``PUSHGATE_*`` environment variables (and a ``.env`` file), validated at start."""

from __future__ import annotations

import base64
import binascii
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from approvals.webhook_targets import Network, parse_networks


class SettingsError(ValueError):
    """Settings failed validation; the message names every bad variable."""


class Settings(BaseSettings):
    """Everything pushgate reads from its environment. Nothing is read at import time."""

    model_config = SettingsConfigDict(
        env_prefix="PUSHGATE_", env_file=".env", extra="ignore", frozen=True
    )

    redis_url: str | None = None
    redis_cluster: bool = False
    redis_wait_replicas: int | None = Field(None, ge=0, le=5)
    redis_wait_timeout_ms: int = Field(500, ge=10, le=10_000)
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    public_url: str = ""
    secret_key: str | None = None
    webauthn_rp_id: str = "localhost"
    webauthn_rp_name: str = "pushgate"
    webauthn_origins: str = ""
    apns_key_file: str | None = None
    apns_key_id: str | None = None
    apns_team_id: str | None = None
    apns_topic: str | None = None
    apns_sandbox: bool = False
    apns_endpoint: str | None = None
    apns_ca_file: str | None = None
    fcm_credentials_file: str | None = None
    fcm_project_id: str | None = None
    fcm_endpoint: str | None = None
    fcm_ca_file: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    trusted_proxies: str = ""
    webhook_allow_networks: str = ""
    shards: int = Field(128, ge=1, le=1024)
    drain_seconds: float = Field(20.0, ge=0, le=600)
    worker_metrics_port: int = Field(9091, ge=0, le=65535)
    worker_concurrency: int = Field(256, ge=1, le=10000)
    worker_reclaim_idle_ms: int = Field(30_000, ge=100, le=3_600_000)
    push_timeout_seconds: float = Field(10.0, gt=0, le=60)
    events_maxlen: int = Field(100_000, ge=1000)
    http_request_timeout_seconds: float = Field(10.0, gt=0, le=300)
    http_keepalive_timeout_seconds: float = Field(75.0, gt=0, le=3600)

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis:// or rediss://")
        return value or None

    @field_validator("public_url")
    @classmethod
    def _public_url_absolute(cls, value: str) -> str:
        parts = urlsplit(value)
        if value and (parts.scheme not in ("http", "https") or not parts.hostname):
            raise ValueError(
                "must be an absolute http:// or https:// URL, e.g. https://mfa.example.com"
            )
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_key_32_bytes(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be base64 of 32 random bytes") from None
        if len(raw) != 32:
            raise ValueError(f"must be base64 of 32 bytes, got {len(raw)} bytes")
        return value

    @field_validator("trusted_proxies", "webhook_allow_networks")
    @classmethod
    def _networks_parse(cls, value: str) -> str:
        parse_networks(value)
        return value

    @model_validator(mode="after")
    def _public_url_default(self) -> Settings:
        if not self.public_url:
            host = "localhost" if self.host in ("127.0.0.1", "0.0.0.0", "::") else self.host  # noqa: S104
            object.__setattr__(self, "public_url", f"http://{host}:{self.port}")
        object.__setattr__(self, "public_url", self.public_url.rstrip("/"))
        return self

    @property
    def replica_acks(self) -> int:
        """Replicas that must acknowledge a write that has to survive a failover: the
        setting, else 1 on a Cluster (which runs with replicas) and 0 on a single Redis."""
        if self.redis_wait_replicas is not None:
            return self.redis_wait_replicas
        return 1 if self.redis_cluster else 0

    @property
    def secret_key_bytes(self) -> bytes:
        """The 32-byte key that encrypts TOTP secrets at rest."""
        if self.secret_key is None:
            raise SettingsError("PUSHGATE_SECRET_KEY is not set")
        return base64.b64decode(self.secret_key)

    @property
    def origins(self) -> list[str]:
        """Accepted WebAuthn origins; defaults to the public URL."""
        items = [o.strip() for o in self.webauthn_origins.split(",") if o.strip()]
        return items or [self.public_url]

    @property
    def webhook_allowed_networks(self) -> tuple[Network, ...]:
        """Networks webhooks may reach although they are not public (empty by default)."""
        return parse_networks(self.webhook_allow_networks)

    @property
    def trusted_proxy_list(self) -> list[str]:
        """Addresses (or CIDRs) whose X-Forwarded-For is believed."""
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; raise SettingsError naming each bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = "PUSHGATE_" + "_".join(str(p) for p in err["loc"]).upper()
            lines.append(f"{name}: {err['msg']}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None
