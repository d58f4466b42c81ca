"""Tenants, API keys (stored only as SHA-256) and tenant policies."""

from __future__ import annotations

import json
from dataclasses import dataclass

from approvals.ids import digest, new_api_key, new_key_id, new_tenant_id
from approvals.store import keys
from approvals.store.backend import Backend, decode_hash
from policies.policy import Policy, parse_policy

ROLES = ("portal", "admin")
MAX_NAME_LENGTH = 200


@dataclass(frozen=True, slots=True)
class ApiKeyIdentity:
    """Who a bearer key belongs to."""

    key_id: str
    tenant: str
    role: str


class TenantStore:
    """The only code that touches tenant, key and policy records."""

    def __init__(self, backend: Backend) -> None:
        self._b = backend

    async def create_tenant(self, name: str, now_ms: int) -> tuple[str, str, str]:
        """A new tenant with its first admin key: (tenant_id, key_id, api_key). The name is
        a label (1-200 printable characters); another tenant may carry the same one."""
        name = name.strip()
        if not 0 < len(name) <= MAX_NAME_LENGTH or not name.isprintable():
            raise ValueError(f"a tenant name is 1 to {MAX_NAME_LENGTH} printable characters")
        tenant_id = new_tenant_id()
        await self._b.redis.hset(
            keys.tenant(tenant_id),
            mapping={"id": tenant_id, "name": name, "created_at": str(now_ms)},
        )
        await self._b.redis.sadd(keys.tenants_named(name), tenant_id)
        key_id, api_key = await self.create_key(tenant_id, "admin", now_ms)
        return tenant_id, key_id, api_key

    async def tenants_named(self, name: str) -> list[str]:
        """Ids of every tenant created with ``name``."""
        return sorted(await self._b.redis.smembers(keys.tenants_named(name.strip())))

    async def tenant_exists(self, tenant_id: str) -> bool:
        """True if the tenant was created."""
        return bool(await self._b.redis.exists(keys.tenant(tenant_id)))

    async def create_key(self, tenant_id: str, role: str, now_ms: int) -> tuple[str, str]:
        """A new API key for a tenant: (key_id, api_key); only the digest is stored."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}")
        if not await self.tenant_exists(tenant_id):
            raise LookupError(f"unknown tenant {tenant_id}")
        key_id, api_key = new_key_id(), new_api_key()
        key_digest = digest(api_key)
        # Two writes in an order where a crash between them is harmless: the id points to a
        # key that does not exist yet, and the key itself was never handed out. (No MULTI:
        # redis-py runs Cluster transactions on a private event loop in a thread.)
        await self._b.redis.set(keys.api_key_id(key_id), key_digest)
        await self._b.redis.hset(
            keys.api_key(key_digest),
            mapping={
                "key_id": key_id,
                "tenant": tenant_id,
                "role": role,
                "created_at": str(now_ms),
            },
        )
        return key_id, api_key

    async def revoke_key(self, key_id: str) -> bool:
        """Delete a key by its id; announces the change so caches drop it at once."""
        key_digest = await self._b.redis.get(keys.api_key_id(key_id))
        if key_digest is None:
            return False
        digest_key = keys.api_key(key_digest)
        await self._b.durability.command(digest_key, "DEL", digest_key, keys.api_key_id(key_id))
        await self._b.redis.publish(keys.AUTH_CHANGED_CHANNEL, key_digest)
        return True

    async def identify(self, key_digest: str) -> ApiKeyIdentity | None:
        """The identity behind a bearer key (given as its SHA-256 digest), or None."""
        record = decode_hash(await self._b.redis.hgetall(keys.api_key(key_digest)))
        if not record:
            return None
        return ApiKeyIdentity(record["key_id"], record["tenant"], record["role"])

    async def get_policy(self, tenant_id: str) -> Policy:
        """The tenant's policy (defaults when none was stored)."""
        raw = await self._b.redis.get(keys.policy(tenant_id))
        return parse_policy(json.loads(raw) if raw else {})

    async def put_policy(self, tenant_id: str, policy: Policy) -> None:
        """Store the whole policy and tell every replica to drop its cached copy."""
        key = keys.policy(tenant_id)
        await self._b.durability.command(key, "SET", key, policy.model_dump_json())
        await self._b.redis.publish(keys.AUTH_CHANGED_CHANNEL, f"policy:{tenant_id}")
