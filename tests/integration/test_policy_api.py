"""The policy API (SPEC §7): every bound through HTTP, and changes reaching new challenges."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from pushgate.settings import Settings
from tests.conftest import TestClock
from tests.integration.conftest import Enroll, Tenant, base_url
from tests.policy_bounds import POLICY_BOUNDS
from tests.portal import Portal

BOUNDS = POLICY_BOUNDS
OUT_OF_BOUNDS = [(name, lo - 1) for name, (_, lo, _) in BOUNDS.items()] + [
    (name, hi + 1) for name, (_, _, hi) in BOUNDS.items()
]
WRONG_TYPES = [
    ("push_ttl_seconds", "60"),
    ("push_ttl_seconds", 60.5),
    ("push_ttl_seconds", True),
    ("push_ttl_seconds", None),
    ("lockout_seconds", [900]),
    ("number_matching", "yes"),
    ("number_matching", 1),
    ("require_user_verification", None),
]


def _ttl(challenge: dict[str, str]) -> float:
    created = datetime.fromisoformat(challenge["created_at"])
    expires = datetime.fromisoformat(challenge["expires_at"])
    return (expires - created).total_seconds()


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize(("name", "value"), OUT_OF_BOUNDS + WRONG_TYPES)
async def test_every_bound_is_refused_naming_the_field(
    admin: Portal, method: str, name: str, value: object
) -> None:
    """Out-of-bounds or wrongly typed values get 422 invalid_policy naming the field."""
    before = (await admin.call("GET", "/v1/policy")).body
    reply = await admin.call(method, "/v1/policy", {name: value})
    assert (reply.status, reply.body["code"]) == (422, "invalid_policy")
    assert [e["field"] for e in reply.body["errors"]] == [name]
    assert name in reply.body["detail"]
    assert (await admin.call("GET", "/v1/policy")).body == before


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_unknown_fields_and_non_objects_are_invalid_policy(
    admin: Portal, method: str
) -> None:
    """An unknown field is named; a body that is not an object is refused as a whole."""
    reply = await admin.call(method, "/v1/policy", {"push_ttl": 30})
    assert (reply.status, reply.body["code"]) == (422, "invalid_policy")
    assert reply.body["errors"][0]["field"] == "push_ttl"
    listed = await admin.call(method, "/v1/policy", [1, 2])
    assert listed.status == 422


async def test_every_limit_value_is_accepted(admin: Portal) -> None:
    """The lowest and the highest value of every field are accepted and read back."""
    for pick in (1, 2):
        document = {name: bounds[pick] for name, bounds in BOUNDS.items()}
        reply = await admin.call("PUT", "/v1/policy", document)
        assert reply.status == 200, reply.body
        stored = (await admin.call("GET", "/v1/policy")).body
        assert {name: stored[name] for name in BOUNDS} == document


async def test_put_fills_defaults_and_patch_keeps_other_fields(admin: Portal) -> None:
    """PUT replaces the whole policy (missing fields default); PATCH changes only its fields."""
    await admin.call("PUT", "/v1/policy", {"lockout_seconds": 0, "totp_max_attempts": 3})
    await admin.call("PUT", "/v1/policy", {"totp_max_attempts": 4})
    policy = (await admin.call("GET", "/v1/policy")).body
    assert (policy["lockout_seconds"], policy["totp_max_attempts"]) == (900, 4)
    await admin.call("PATCH", "/v1/policy", {"lockout_seconds": 60})
    policy = (await admin.call("GET", "/v1/policy")).body
    assert (policy["lockout_seconds"], policy["totp_max_attempts"]) == (60, 4)


async def test_policy_routes_are_admin_only(portal: Portal) -> None:
    """A portal key gets 403 on every policy route."""
    for method in ("GET", "PUT", "PATCH"):
        body = None if method == "GET" else {"push_ttl_seconds": 30}
        assert (await portal.call(method, "/v1/policy", body)).status == 403


async def test_a_change_applies_to_the_next_challenge(
    portal: Portal, admin: Portal, enroll: Enroll
) -> None:
    """Right after PATCH, the next challenge on the same replica uses the new TTL and digits."""
    await enroll("alice")
    first = (await portal.create_challenge("alice", resource="one")).body
    assert _ttl(first) == 60
    await admin.call("PATCH", "/v1/policy", {"push_ttl_seconds": 15, "number_digits": 3})
    second = (await portal.create_challenge("alice", resource="two")).body
    assert _ttl(second) == 15
    assert len(second["number"]) == 3


async def test_a_change_reaches_the_cache_of_another_replica(
    settings: Settings,
    clock: TestClock,
    tenant: Tenant,
    portal: Portal,
    admin: Portal,
    enroll: Enroll,
    session: aiohttp.ClientSession,
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> None:
    """Replica B has the policy cached; a PATCH on replica A drops it there by change notice."""
    replica_b = await aiohttp_server(create_app(settings, clock=clock))
    portal_b = Portal(session, base_url(replica_b), tenant.portal_key)
    await enroll("alice")
    cached = (await portal_b.create_challenge("alice", resource="r0")).body
    assert _ttl(cached) == 60
    await admin.call("PATCH", "/v1/policy", {"push_ttl_seconds": 20})
    ttl = 60.0
    for attempt in range(1, 30):  # the notice crosses pub/sub; the cache itself lives 5 s
        ttl = _ttl((await portal_b.create_challenge("alice", resource=f"r{attempt}")).body)
        if ttl == 20:
            break
        await asyncio.sleep(0.05)
    assert ttl == 20
