"""Shared fixtures: a private Redis-compatible server, settings, an injected clock."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis
from hypothesis import settings as hypothesis_settings

from approvals.store.clock import ServerClock
from pushgate.embedded import EmbeddedRedis
from pushgate.settings import Settings

# Tests assert no timing: Hypothesis's per-example deadline (200 ms) would fail a property on a
# machine busy with the rest of the suite, so it is off for every property test.
hypothesis_settings.register_profile("pushgate", deadline=None)
hypothesis_settings.load_profile("pushgate")

TEST_SECRET_KEY = base64.b64encode(b"k" * 32).decode()
ORIGIN = "http://localhost:8080"


class TestClock(ServerClock):
    """The one clock (Redis's time) for a test: ``advance`` moves it forward for the
    gateway, the workers and the scripts alike, so a test never sleeps through a TTL."""

    __test__ = False

    def advance(self, seconds: float) -> None:
        self.shift += seconds


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """One private server for the session (never a server that was already running)."""
    with EmbeddedRedis(appendonly=False) as server:
        yield server


@pytest.fixture
async def redis_url(redis_server: EmbeddedRedis) -> str:
    """The private server's URL, emptied before each test (it is ours alone)."""
    if not redis_server.running:
        redis_server.start()
    client = aioredis.Redis.from_url(redis_server.url)
    await client.flushall()
    await client.aclose()
    return redis_server.url


@pytest.fixture
def clock() -> TestClock:
    return TestClock()


def make_settings(redis_url: str, **overrides: object) -> Settings:
    """Settings for tests: a real Redis URL, 4 shards, the test origin."""
    values: dict[str, object] = {
        "redis_url": redis_url,
        "secret_key": TEST_SECRET_KEY,
        "shards": 4,
        "public_url": ORIGIN,
        "webauthn_rp_id": "localhost",
        "log_level": os.environ.get("PUSHGATE_TEST_LOG_LEVEL", "warning"),
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return make_settings(redis_url)


@pytest.fixture(scope="session", autouse=True)
def quiet_logs() -> None:
    """JSON logs at warning level, so test output stays readable."""
    from pushgate.logs import configure_logging

    configure_logging(os.environ.get("PUSHGATE_TEST_LOG_LEVEL", "warning"))
