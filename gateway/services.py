"""Everything a request handler needs, held in one typed app key."""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from approvals.secretbox import SecretBox
from approvals.store.backend import Backend
from approvals.store.challenges import ChallengeStore
from approvals.store.clock import ServerClock
from approvals.store.devices import DeviceStore
from approvals.store.events import EventStore
from approvals.store.tenants import TenantStore
from approvals.store.totp import TotpStore
from approvals.store.users import UserStore
from approvals.store.webhooks import WebhookStore
from gateway.caches import AuthCache, PolicyCache
from gateway.clientip import Network
from gateway.cluster_waiters import ClusterHub
from gateway.memory import AllocatorTrim
from gateway.metrics import GatewayMetrics
from gateway.waiters import Hub
from pushgate.settings import Settings


@dataclass
class Services:
    """The gateway's resources; built in ``create_app`` and opened in its cleanup context."""

    settings: Settings
    backend: Backend
    clock: ServerClock
    hub: Hub | ClusterHub
    metrics: GatewayMetrics
    auth_cache: AuthCache
    policy_cache: PolicyCache
    challenges: ChallengeStore
    devices: DeviceStore
    tenants: TenantStore
    users: UserStore
    totp: TotpStore
    events: EventStore
    webhooks: WebhookStore
    secret_box: SecretBox
    trusted_networks: list[Network] = field(default_factory=list)
    websockets: weakref.WeakSet[web.WebSocketResponse] = field(default_factory=weakref.WeakSet)
    draining: bool = False
    drain_deadline: float | None = None
    extra_registries: list[Any] = field(default_factory=list)
    allocator: AllocatorTrim = field(default_factory=AllocatorTrim)

    def begin_drain(self, deadline: float) -> None:
        """Fail readiness, refuse new websockets, and make long polls answer by ``deadline``
        (event-loop time)."""
        self.draining = True
        self.drain_deadline = deadline
        self.hub.wake_all()

    def now_ms(self) -> int:
        """The current time in epoch milliseconds (the Redis server's, see ServerClock)."""
        return self.clock.now_ms()


SERVICES = web.AppKey("services", Services)


def services(request: web.Request) -> Services:
    """The services of the app serving ``request``."""
    return request.app[SERVICES]


REQUEST_ID = web.RequestKey("request_id", str)
TENANT = web.RequestKey("tenant", str)
CHALLENGE_ID = web.RequestKey("challenge_id", str)


def tag_request(
    request: web.Request, *, tenant: str | None = None, challenge_id: str | None = None
) -> None:
    """Attach the tenant and challenge to the request's log line."""
    if tenant:
        request[TENANT] = tenant
    if challenge_id:
        request[CHALLENGE_ID] = challenge_id
