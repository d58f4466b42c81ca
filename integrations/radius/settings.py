"""Settings of ``pushgate radius`` from ``PUSHGATE_RADIUS_*`` variables, validated at start."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from pushgate.settings import SettingsError

#: the shortest shared secret accepted (RFC 2865 §3 asks for at least 16 octets)
MIN_SECRET_LENGTH = 16
#: what the gateway accepts as a user or resource id
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+:=-]{0,127}$")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class RadiusClient:
    """A NAS (VPN concentrator, firewall, Wi-Fi controller) allowed to ask, with its secret."""

    network: Network
    secret: bytes

    @property
    def name(self) -> str:
        """How logs name the client: its configured address or network."""
        net = self.network
        return str(net.network_address) if net.num_addresses == 1 else str(net)


def parse_clients(text: str) -> tuple[RadiusClient, ...]:
    """``address-or-CIDR=secret`` pairs separated by commas; raise ValueError naming the bad one."""
    clients: list[RadiusClient] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        where, sep, secret = entry.partition("=")
        where = where.strip()
        if not sep or not secret:
            raise ValueError(f"{where or entry!r} has no '=shared-secret'")
        try:
            network = ipaddress.ip_network(where, strict=False)
        except ValueError:
            raise ValueError(f"{where!r} is not an address or CIDR") from None
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"the shared secret of {where} is shorter than {MIN_SECRET_LENGTH} characters"
            )
        if any(c.network == network for c in clients):
            raise ValueError(f"{where} is listed twice")
        clients.append(RadiusClient(network, secret.encode()))
    if not clients:
        raise ValueError("name at least one client as address-or-CIDR=shared-secret")
    return tuple(clients)


def _lowercase(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


class RadiusSettings(BaseSettings):
    """What ``pushgate radius`` reads from its environment (and a ``.env`` file)."""

    model_config = SettingsConfigDict(
        env_prefix="PUSHGATE_RADIUS_", env_file=".env", extra="ignore", frozen=True
    )

    api_url: str
    api_key: SecretStr
    host: str = "0.0.0.0"  # noqa: S104 - a RADIUS server listens for its NAS clients
    port: int = Field(1812, ge=0, le=65535)  # 0: any free port (logged)
    clients: str
    app_name: str = Field("VPN", min_length=1, max_length=100)
    resource: str = "radius"
    fail_open: bool = False
    strip_realm: bool = False
    lowercase_users: bool = False
    api_ca_file: Path | None = None
    api_timeout_seconds: float = Field(10.0, gt=0, le=60)
    max_in_flight: int = Field(2000, ge=1, le=100_000)
    # shared with the other commands: PUSHGATE_LOG_LEVEL and PUSHGATE_LOG_FORMAT, any case
    log_level: Annotated[
        Literal["debug", "info", "warning", "error"], BeforeValidator(_lowercase)
    ] = Field("info", validation_alias=AliasChoices("PUSHGATE_LOG_LEVEL", "log_level"))
    log_format: Annotated[Literal["json", "console"], BeforeValidator(_lowercase)] = Field(
        "json", validation_alias=AliasChoices("PUSHGATE_LOG_FORMAT", "log_format")
    )

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be the gateway's http:// or https:// base URL")
        return value.rstrip("/")

    @field_validator("api_key")
    @classmethod
    def _portal_key(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("pg_live_"):
            raise ValueError("must be a pushgate API key (pg_live_...) with the portal role")
        return value

    @field_validator("host")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("must be an IP address to listen on, e.g. 0.0.0.0 or ::") from None
        return value

    @field_validator("clients")
    @classmethod
    def _clients(cls, value: str) -> str:
        parse_clients(value)
        return value

    @field_validator("resource")
    @classmethod
    def _resource_id(cls, value: str) -> str:
        if not ID_PATTERN.match(value):
            raise ValueError("letters, digits and ._@+:=- only, up to 128 characters")
        return value

    @field_validator("api_ca_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not os.access(value, os.R_OK):
            raise ValueError(f"{value} is not a readable file")
        return value

    @property
    def client_table(self) -> tuple[RadiusClient, ...]:
        """The configured NAS clients."""
        return parse_clients(self.clients)


def _variable(field: str) -> str:
    if field in ("log_level", "log_format"):
        return f"PUSHGATE_{field.upper()}"
    return f"PUSHGATE_RADIUS_{field.upper()}"


def load_radius_settings(**overrides: object) -> RadiusSettings:
    """Read the settings; raise SettingsError naming each bad or missing variable."""
    try:
        return RadiusSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            message = "is required" if err["type"] == "missing" else err["msg"]
            lines.append(f"{_variable(field)}: {message}")
        raise SettingsError("invalid RADIUS settings:\n  " + "\n  ".join(lines)) from None
