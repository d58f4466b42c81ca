"""Fixtures for the RADIUS tests: FreeRADIUS's clients and one real stack per module."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from pushgate.embedded import EmbeddedRedis, free_port
from tests.conftest import make_settings
from tests.integration.conftest import make_tenant
from tests.integration.processes import base_env, processes, start_gateway, start_worker
from tests.integration.radius.radclient import require_radclient
from tests.integration.radius.stack import SECRET, Scenario, Stack, radius_env, start_radius


@pytest.fixture(scope="session")
def radclient_installed() -> None:
    """radclient and radtest on PATH (installed with apt when missing and allowed)."""
    require_radclient()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(
    radclient_installed: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """Redis, ``pushgate serve``, ``pushgate worker`` and ``pushgate radius`` as processes."""
    cwd = tmp_path_factory.mktemp("radius-stack")
    port = free_port()
    origin = f"http://localhost:{port}"
    with EmbeddedRedis(appendonly=False) as redis_server, processes() as started:
        env = base_env(redis_server.url, port=port, public_url=origin, webauthn_origins=origin)
        tenant = await make_tenant(make_settings(redis_server.url, shards=4))
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(
                start_gateway(started, session, env, cwd, port),
                start_worker(started, session, env, cwd, "worker"),
            )
        base_url = f"http://127.0.0.1:{port}"
        settings = {
            "api_url": base_url,
            "api_key": tenant.portal_key,
            "host": "127.0.0.1",
            "port": 0,
            "clients": f"127.0.0.1={SECRET}",
        }
        radius, radius_port = await start_radius(started, radius_env(env, **settings), cwd)
        yield Stack(
            base_url=base_url,
            origin=origin,
            admin_key=tenant.admin_key,
            portal_key=tenant.portal_key,
            radius_port=radius_port,
            radius=radius,
            env=radius_env(env, **settings),
            cwd=cwd,
            started=started,
        )


@pytest.fixture
async def scenario(stack: Stack) -> AsyncIterator[Scenario]:
    """A session on the stack, with the tenant policy back at its defaults."""
    async with aiohttp.ClientSession() as session:
        ready = Scenario(stack, session)
        await ready.policy()
        yield ready
