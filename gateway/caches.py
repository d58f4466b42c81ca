"""Short-lived in-process caches for API keys and policies, dropped on change notices."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from approvals.ids import digest
from approvals.store.tenants import ApiKeyIdentity, TenantStore
from policies.policy import Policy

T = TypeVar("T")


class _TtlCache(Generic[T]):
    def __init__(self, ttl: float, max_items: int = 10_000) -> None:
        self._ttl = ttl
        self._max = max_items
        self._items: dict[str, tuple[float, T]] = {}

    def get(self, key: str) -> tuple[bool, T | None]:
        hit = self._items.get(key)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    def put(self, key: str, value: T) -> None:
        if len(self._items) >= self._max:
            self._items.clear()
        self._items[key] = (time.monotonic() + self._ttl, value)

    def drop(self, key: str) -> None:
        self._items.pop(key, None)

    async def get_or_load(self, key: str, load: Callable[[], Awaitable[T]]) -> T:
        found, value = self.get(key)
        if found:
            return value  # type: ignore[return-value]
        value = await load()
        self.put(key, value)
        return value


class AuthCache:
    """API key -> identity for a few seconds; revocations drop entries on every replica."""

    def __init__(self, tenants: TenantStore, ttl: float = 5.0) -> None:
        self._tenants = tenants
        self._cache: _TtlCache[ApiKeyIdentity | None] = _TtlCache(ttl)

    async def identify(self, api_key: str) -> ApiKeyIdentity | None:
        key_digest = digest(api_key)
        return await self._cache.get_or_load(key_digest, lambda: self._tenants.identify(key_digest))

    def forget(self, key_digest: str) -> None:
        self._cache.drop(key_digest)


class PolicyCache:
    """Tenant -> policy for a few seconds; a policy change drops it on every replica."""

    def __init__(self, tenants: TenantStore, ttl: float = 5.0) -> None:
        self._tenants = tenants
        self._cache: _TtlCache[Policy] = _TtlCache(ttl)

    async def get(self, tenant: str) -> Policy:
        return await self._cache.get_or_load(tenant, lambda: self._tenants.get_policy(tenant))

    def put(self, tenant: str, policy: Policy) -> None:
        self._cache.put(tenant, policy)

    def forget(self, tenant: str) -> None:
        self._cache.drop(tenant)

    def on_change_notice(self, message: str) -> None:
        """Handle a message from the auth/policy change channel."""
        if message.startswith("policy:"):
            self.forget(message.removeprefix("policy:"))
