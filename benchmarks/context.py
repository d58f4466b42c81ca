"""What every benchmark gets: the profile, CPUs, the running stack and the tenant."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from benchmarks.profile import Profile
from benchmarks.stack import Server, Tenant
from pushgate.embedded import EmbeddedRedis


@dataclass
class Context:
    profile: Profile
    server_cpus: set[int] | None
    aux_cpus: set[int] | None
    workdir: Path
    redis: EmbeddedRedis
    session: aiohttp.ClientSession
    tenant: Tenant
    gateways: dict[str, Server]  # by log level
    baseline: Server
    started: float = field(default_factory=time.monotonic)

    @property
    def redis_url(self) -> str:
        return self.redis.url

    @property
    def redis_port(self) -> int:
        return self.redis.port

    @property
    def load_users(self) -> list[str]:
        return self.tenant.users["load"]

    def say(self, text: str) -> None:
        """Progress on stderr with the time since start."""
        sys.stderr.write(f"[{time.monotonic() - self.started:6.1f}s] {text}\n")
        sys.stderr.flush()
