"""What a failover may lose, on real processes: a write a client was told is done survives the
death of its primary (it waited for a replica), and a write whose replica did not acknowledge
it in time was never reported done (503), so losing it undoes nothing anyone was told.

Each test runs a three-primary, three-replica cluster, two ``pushgate serve`` gateways and the
stand-ins, puts an approval, a used TOTP step, a consumed enrollment code and a lockout on
one primary, and kills that primary (``kill -9``); the replica takes over.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from approvals.ids import shard_for
from approvals.store import keys
from approvals.totp import STEP_SECONDS, current_code
from pushgate.devicekit.authenticator import SoftAuthenticator
from pushgate.devicekit.client import DeviceClient
from pushgate.devicekit.errors import DeviceApiError
from pushgate.embedded import EmbeddedRedis
from tests.cluster import (
    embedded_cluster,
    node_info,
    primary_port_of_slot,
    replica_offsets_caught_up,
    replicas_acknowledge,
    until,
)
from tests.integration.cluster_rig import SHARDS, ClusterStack, Watch, cluster_stack, watch
from tests.integration.processes import cli_json, wait_until
from tests.portal import Portal

ATTEMPTS = 5  # totp_max_attempts of the default policy


def users_on(port: int, tenant: str, ask: EmbeddedRedis, count: int) -> list[str]:
    """``count`` user ids whose shard the primary on ``port`` serves."""
    found = []
    for index in range(500):
        user = f"user{index}"
        slot = key_slot(keys.tag(shard_for(tenant, user, SHARDS)).encode())
        if primary_port_of_slot(ask.port, slot) == port:
            found.append(user)
            if len(found) == count:
                return found
    raise AssertionError("too few users on the primary")


def replica_of(rig: ClusterStack, primary: int) -> EmbeddedRedis:
    for node in rig.nodes:
        info = node_info(node.port) if node.running else {}
        if info and str(primary) in _master_port(node):
            return node
    raise AssertionError(f"no replica of {primary}")


def _master_port(node: EmbeddedRedis) -> str:
    client = redis.Redis(port=node.port, decode_responses=True, socket_timeout=5)
    try:
        return str(client.info("replication").get("master_port", ""))
    finally:
        client.close()


def cut_replication(primary: int) -> None:
    """Drop the primary's connections to its replicas (a paused replica cannot reconnect):
    nothing it writes afterwards is replicated, not even into a socket buffer."""
    client = redis.Redis(port=primary, decode_responses=True, socket_timeout=5)
    try:
        client.execute_command("CLIENT", "KILL", "TYPE", "replica")
    finally:
        client.close()


def phone_of(rig: ClusterStack, portal: Portal) -> DeviceClient:
    """A software phone, not enrolled yet."""
    return DeviceClient(
        portal.base_url,
        session=portal.session,
        authenticator=SoftAuthenticator.generate(origin=rig.s.origin, rp_id="localhost"),
    )


async def new_phone(rig: ClusterStack, portal: Portal, user: str) -> DeviceClient:
    phone = phone_of(rig, portal)
    await phone.enroll(await portal.enrollment_code(user))
    return phone


async def active_totp(portal: Portal, user: str) -> tuple[str, int]:
    """A confirmed TOTP key for ``user``; returns it and the first step not used up."""
    secret = str((await portal.call("POST", f"/v1/users/{user}/totp")).body["secret"])
    step = int(time.time() // STEP_SECONDS)
    codes = [current_code(secret, (step - 1) * STEP_SECONDS), current_code(secret, step * 30)]
    reply = await portal.call("POST", f"/v1/users/{user}/totp/confirm", {"codes": codes})
    assert reply.status == 200, reply.body
    return secret, step + 1


async def verify(portal: Portal, user: str, code: str) -> tuple[int, str | None]:
    reply = await portal.call("POST", f"/v1/users/{user}/totp/verify", {"code": code})
    return reply.status, (reply.body or {}).get("code") or (reply.body or {}).get("result")


async def kill_and_fail_over(rig: ClusterStack, victim: int, user_slot: int, probe: str) -> None:
    """kill -9 the primary, wait until a replica serves its slots, start it again (it rejoins
    as a replica, so the new primary's writes can be acknowledged again)."""
    rig.node(victim).kill()
    survivor = next(n for n in rig.nodes if n.running)
    until(lambda: primary_port_of_slot(survivor.port, user_slot) != victim, "the failover", 40)
    rig.node(victim).start()
    primary = primary_port_of_slot(survivor.port, user_slot)
    until(lambda: replicas_acknowledge(primary, probe), "the old primary back as a replica", 40)


@pytest.fixture
async def durable_rig(tmp_path: Path) -> Any:
    with embedded_cluster(replicas=1, node_timeout_ms=2000) as nodes:
        async with cluster_stack(nodes, tmp_path) as rig:
            tenant = cli_json(rig.s.env, tmp_path, "tenant", "create", "durable")
            key = cli_json(rig.s.env, tmp_path, "apikey", "create", tenant["tenant_id"],
                           "--role", "portal")  # fmt: skip
            portal = Portal(rig.s.session, rig.s.portal.base_url, str(key["api_key"]))
            victim = primary_port_of_slot(nodes[0].port, key_slot(keys.tag(0).encode()))
            users = users_on(victim, tenant["tenant_id"], nodes[0], 4)
            tag = keys.tag(shard_for(tenant["tenant_id"], users[0], SHARDS))
            yield rig, portal, victim, users, key_slot(tag.encode()), f"{tag}:test-probe"


async def test_what_a_client_was_told_survives_the_death_of_its_primary(durable_rig: Any) -> None:
    """After an approval the portal was told, a verified TOTP code, a consumed enrollment code
    and a lockout, their primary is killed: the challenge is still approved, the code is a
    replay, the enrollment code is used, and the user is still locked."""
    rig, portal, victim, (approver, totp_user, enrollee, locked), slot, probe = durable_rig
    phone = await new_phone(rig, portal, approver)
    created = (await portal.create_challenge(approver)).body
    seen = Watch()
    waiter = asyncio.create_task(watch(rig.second, created["id"], created["watch_token"], seen))
    await phone.respond(created["id"], "approve", created["number"])
    await waiter
    assert seen.result is not None and seen.result["status"] == "approved"

    secret, step = await active_totp(portal, totp_user)
    code = current_code(secret, step * STEP_SECONDS)
    assert await verify(portal, totp_user, code) == (200, "allow")
    enrollment = await portal.enrollment_code(enrollee)
    await phone_of(rig, portal).enroll(enrollment)
    await active_totp(portal, locked)
    for _ in range(ATTEMPTS):
        await verify(portal, locked, "000000")
    assert (await verify(portal, locked, "000000"))[0] == 423

    await kill_and_fail_over(rig, victim, slot, probe)
    view = (await portal.call("GET", f"/v1/challenges/{created['id']}")).body
    assert view["status"] == "approved"
    assert await verify(portal, totp_user, code) == (422, "code_replayed")
    with pytest.raises(DeviceApiError) as again:
        await phone_of(rig, portal).enroll(enrollment)
    assert again.value.code == "enrollment_code_invalid"
    assert await verify(portal, locked, current_code(secret, time.time())) == (423, "user_locked")


async def test_a_write_no_replica_acknowledged_was_never_reported_done(durable_rig: Any) -> None:
    """With the primary's replica paused (SIGSTOP), an approval, a TOTP verification and an
    enrollment are applied on the primary but answered 503 and the waiting portal is told
    nothing; the primary dies and the replica, resumed, takes over without them. Then each
    succeeds once: the portal is told "approved" exactly once, the code allows once, the
    enrollment code enrolls one device."""
    rig, portal, victim, (approver, totp_user, enrollee, _), slot, probe = durable_rig
    phone = await new_phone(rig, portal, approver)
    secret, step = await active_totp(portal, totp_user)
    code = current_code(secret, step * STEP_SECONDS)
    enrollment = await portal.enrollment_code(enrollee)
    created = (await portal.create_challenge(approver)).body
    seen = Watch()
    waiter = asyncio.create_task(watch(rig.second, created["id"], created["watch_token"], seen))
    replica = replica_of(rig, victim)
    until(lambda: replica_offsets_caught_up(victim), "the replica to catch up", 10)
    assert replica.pid is not None
    os.kill(replica.pid, signal.SIGSTOP)
    cut_replication(victim)  # what the primary sends from now on reaches no replica
    try:
        with pytest.raises(DeviceApiError) as answered:
            await phone.respond(created["id"], "approve", created["number"])
        assert answered.value.status == 503
        assert await verify(portal, totp_user, code) == (503, "backend_unavailable")
        with pytest.raises(DeviceApiError) as enrolled:
            await phone_of(rig, portal).enroll(enrollment)
        assert enrolled.value.status == 503
        read = await portal.call("GET", f"/v1/challenges/{created['id']}")
        assert read.status == 503  # approved on the primary, not confirmed: not told
        assert seen.result is None
        rig.node(victim).kill()
    finally:
        os.kill(replica.pid, signal.SIGCONT)
    survivor = next(n for n in rig.nodes if n.running)
    until(lambda: primary_port_of_slot(survivor.port, slot) == replica.port, "the failover", 40)
    rig.node(victim).start()
    until(lambda: replicas_acknowledge(replica.port, probe), "a replica for the new primary", 40)

    view = (await portal.call("GET", f"/v1/challenges/{created['id']}")).body
    assert view["status"] == "pending"  # the unacknowledged approval is gone, and was never told
    await phone.respond(created["id"], "approve", created["number"])
    await waiter
    assert seen.result is not None and seen.result["status"] == "approved"
    assert await verify(portal, totp_user, code) == (200, "allow")
    assert await verify(portal, totp_user, code) == (422, "code_replayed")
    await phone_of(rig, portal).enroll(enrollment)

    async def one_device() -> bool:
        reply = await portal.call("GET", f"/v1/users/{enrollee}/devices")
        return reply.status == 200 and len(reply.body["items"]) == 1

    await wait_until(one_device, "exactly one device enrolled with the code", 5)
