"""Identifier formats. Ids of per-user records carry their shard so any replica finds them."""

from __future__ import annotations

import hashlib
import re
import secrets

_SHARDED = re.compile(r"^(ch|dv)([0-9a-f]{4})[A-Za-z0-9_-]{16,64}$")


def shard_for(tenant_id: str, user_id: str, shards: int) -> int:
    """The shard of a (tenant, user): a stable hash, so all of a user's keys share one slot."""
    digest = hashlib.blake2b(f"{tenant_id}\x00{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def new_challenge_id(shard: int) -> str:
    """A challenge id: ``ch`` + 4 hex digits of the shard + 128 random bits."""
    return f"ch{shard:04x}{secrets.token_urlsafe(16)}"


def new_device_id(shard: int) -> str:
    """A device id: ``dv`` + 4 hex digits of the shard + 128 random bits (never contains '.')."""
    return f"dv{shard:04x}{secrets.token_urlsafe(16)}"


def shard_of(sharded_id: str, shards: int) -> int | None:
    """The shard encoded in a challenge or device id, or None if the id is malformed."""
    match = _SHARDED.match(sharded_id)
    if match is None:
        return None
    shard = int(match.group(2), 16)
    return shard if shard < shards else None


def new_tenant_id() -> str:
    """A tenant id (public, not secret)."""
    return f"tn_{secrets.token_hex(8)}"


def new_key_id() -> str:
    """The public handle of an API key (used to revoke it)."""
    return f"key_{secrets.token_hex(8)}"


def new_api_key() -> str:
    """A bearer API key with 256 random bits."""
    return f"pg_live_{secrets.token_urlsafe(32)}"


def new_secret() -> str:
    """A 256-bit random secret (device secrets, watch tokens)."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """SHA-256 hex of a high-entropy secret: what is stored instead of the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()
