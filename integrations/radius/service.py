"""Running ``pushgate radius``: bind the UDP socket, answer until told to stop."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from integrations.radius.api import ApiConfig, PushgateApi
from integrations.radius.dictionary import radius_dictionary
from integrations.radius.logins import LoginPolicy, Logins
from integrations.radius.server import ClientTable, RadiusProtocol
from integrations.radius.settings import RadiusSettings
from integrations.radius.states import ChallengeStates
from pushgate.logs import get_logger

log = get_logger("pushgate.radius")


def build_logins(settings: RadiusSettings, api: PushgateApi) -> Logins:
    """The login rules with this deployment's choices."""
    policy = LoginPolicy(
        app_name=settings.app_name,
        resource=settings.resource,
        fail_open=settings.fail_open,
        strip_realm=settings.strip_realm,
        lowercase_users=settings.lowercase_users,
    )
    return Logins(api, ChallengeStates(settings.api_key.get_secret_value()), policy)


async def run_radius(
    settings: RadiusSettings,
    stop: asyncio.Event,
    *,
    on_ready: Callable[[str, int], None] | None = None,
) -> None:
    """Serve RADIUS on ``settings.host``:``settings.port`` until ``stop`` is set."""
    api = PushgateApi(
        ApiConfig(
            base_url=settings.api_url,
            api_key=settings.api_key.get_secret_value(),
            timeout_seconds=settings.api_timeout_seconds,
            ca_file=settings.api_ca_file,
            max_connections=settings.max_in_flight,
        )
    )
    clients = settings.client_table
    protocol = RadiusProtocol(
        ClientTable(clients),
        radius_dictionary(),
        build_logins(settings, api),
        max_in_flight=settings.max_in_flight,
    )
    try:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: protocol, local_addr=(settings.host, settings.port)
        )
        host, port = transport.get_extra_info("sockname")[:2]
        log.info(
            "radius.listening",
            host=host,
            port=port,
            api_url=settings.api_url,
            clients=[c.name for c in clients],
            fail_open=settings.fail_open,
        )
        if on_ready is not None:
            on_ready(host, port)
        await stop.wait()
        log.info("radius.stopping")
    finally:
        await protocol.close()
        await api.close()


async def serve_until_signalled(settings: RadiusSettings) -> None:
    """``pushgate radius``: serve until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run_radius(settings, stop)
