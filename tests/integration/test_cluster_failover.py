"""A primary of a three-primary, three-replica Redis Cluster is killed (``kill -9``) while
portals wait on their challenges and push jobs are in flight: the replica takes over, every
waiting portal ends with the state the cluster kept, delivery continues on the new primary,
and nothing is approved twice.

Real processes: the cluster's six ``valkey-server`` nodes, two ``pushgate serve`` gateways
(portals wait on one and create through the other), two ``pushgate worker`` processes and the
APNs stand-in. Portals and phones behave like real clients: a 503 or a dropped websocket is
retried (bounded), never treated as an answer.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from pushgate.devicekit.client import DeviceClient
from tests.cluster import embedded_cluster, replica_offsets_caught_up, until
from tests.integration.cluster_rig import (
    ClusterStack,
    Watch,
    cluster_stack,
    create,
    until_failed_over,
    watch,
)
from tests.integration.delivery_rig import copies
from tests.integration.processes import wait_until
from tests.portal import Portal

NODE_TIMEOUT_MS = 2000


async def final_status(portal: Portal, challenge_id: str) -> str:
    """The challenge's status as the cluster now has it (503s retried, bounded)."""
    for _ in range(100):
        reply = await portal.call("GET", f"/v1/challenges/{challenge_id}")
        if reply.status == 200:
            return str(reply.body["status"])
        assert reply.status == 503, reply.body
        await asyncio.sleep(0.2)
    raise AssertionError(f"{challenge_id} could not be read")


async def approved_events(admin: Portal) -> Counter[str]:
    """``challenge.approved`` audit events per challenge."""
    seen: Counter[str] = Counter()
    after = ""
    for _ in range(100):
        reply = await admin.call("GET", f"/v1/events?limit=100{'&after=' + after if after else ''}")
        assert reply.status == 200, reply.body
        items = reply.body["items"]
        for item in items:
            if item["type"] == "challenge.approved":
                seen[item["challenge_id"]] += 1
        if not items:
            return seen
        after = items[-1]["id"]
    raise AssertionError("the event stream did not end")


async def open_challenges(
    rig: ClusterStack, phones: dict[str, DeviceClient], resource: str
) -> dict[str, tuple[str, dict[str, Any], Watch, asyncio.Task[None]]]:
    """One challenge per user, created through one gateway and waited on through the other."""
    opened = {}
    for index, user in enumerate(phones):
        creator, waiter = rig.gateways[index % 2], rig.gateways[(index + 1) % 2]
        body = await create(creator, user, resource)
        seen = Watch()
        task = asyncio.create_task(watch(waiter, body["id"], body["watch_token"], seen))
        opened[body["id"]] = (user, body, seen, task)
    return opened


async def test_waiters_converge_and_delivery_continues_when_a_primary_is_killed(
    tmp_path: Path,
) -> None:
    """kill -9 of the primary holding most of the pending challenges, with portals waiting and
    prompts in flight: each portal ends with the status the cluster kept (the one a final
    read returns), every prompt in flight or queued reaches its phone once, challenges created
    after the failover are delivered and approved, and no challenge is approved twice."""
    with embedded_cluster(replicas=1, node_timeout_ms=NODE_TIMEOUT_MS) as nodes:
        async with cluster_stack(nodes, tmp_path, push_timeout_seconds=5) as rig:
            s = rig.s
            phones = {
                f"user{i}": await s.phone(f"user{i}", "apns", f"{i:02x}" * 32) for i in range(12)
            }
            tokens = {user: f"{i:02x}" * 32 for i, user in enumerate(phones)}
            for name in ("worker-a", "worker-b"):
                await s.worker(name, worker_concurrency=3)

            before = await open_challenges(rig, phones, "crm")
            decided: dict[str, str] = {}
            for cid, (user, body, _, _) in list(before.items())[::2]:
                assert await rig.answer(phones[user], cid, "approve", body["number"])
                decided[cid] = "approved"
            await asyncio.gather(*(before[cid][3] for cid in decided))

            await s.apns.faults(latency=2.0)  # prompts in flight and queued when it dies
            during = await open_challenges(rig, phones, "vpn")
            primaries = Counter(rig.primary_of(cid) for cid in [*before, *during])
            victim = primaries.most_common(1)[0][0]
            on_victim = next(c for c in [*before, *during] if rig.primary_of(c) == victim)
            until(lambda: replica_offsets_caught_up(victim), "the replica to catch up", 10)
            rig.node(victim).kill()

            queued: dict[str, list[tuple[str, str, str | None]]] = {user: [] for user in phones}
            open_now = {c: e for c, e in {**before, **during}.items() if c not in decided}
            for index, (cid, (user, body, _, _)) in enumerate(open_now.items()):
                decision = "deny" if index % 3 == 0 else "approve"
                decided[cid] = "denied" if decision == "deny" else "approved"
                queued[user].append((cid, decision, body["number"]))

            async def answer_all(user: str) -> None:  # one phone answers one prompt at a time
                for cid, decision, number in queued[user]:
                    assert await rig.answer(phones[user], cid, decision, number), rig.answers[cid]

            answering = asyncio.gather(*(answer_all(user) for user in phones))
            new_primary = await until_failed_over(rig, victim, on_victim)
            rig.node(victim).start()  # restarted, as its pod would be: it rejoins as a replica
            await answering  # answers wait for a replica to acknowledge them (503 until then)
            await s.apns.heal()

            moved = [
                entry[0] for cid, entry in before.items() if rig.primary_of(cid) == new_primary
            ]
            after = await open_challenges(rig, {u: phones[u] for u in moved}, "mail")

            async def prompted() -> bool:
                accepted = copies(await s.apns.accepted(), "prompt")
                return all(accepted[(cid, tokens[e[0]])] for cid, e in after.items())

            await wait_until(prompted, "the new primary's challenges pushed", 30)
            for cid, (user, body, _, _) in after.items():
                assert await rig.answer(phones[user], cid, "approve", body["number"])
                decided[cid] = "approved"

            everything = {**before, **during, **after}
            await asyncio.gather(*(entry[3] for entry in everything.values()))
            for cid, (_, _, seen, _) in everything.items():
                assert seen.result is not None
                truth = await final_status(s.portal, cid)
                assert seen.result["status"] == truth == decided[cid], (cid, seen, truth)

            async def drained() -> bool:
                return await rig.jobs_pending() == 0

            await wait_until(drained, "every push job acknowledged", 30)
            prompts = copies(await s.apns.accepted(), "prompt")
            for cid, (user, _, _, _) in everything.items():
                assert prompts[(cid, tokens[user])] <= 1, (cid, prompts[(cid, tokens[user])])
            for cid, (user, _, _, _) in after.items():
                assert prompts[(cid, tokens[user])] == 1, (cid, prompts[(cid, tokens[user])])
            assert all(statuses.count(200) <= 1 for statuses in rig.answers.values())
            approvals = await approved_events(s.portal)
            assert max(approvals.values()) == 1
            assert moved
            logs = [p.log_text() for p in s.started if p.name in ("gateway", "gw2")]
            assert any("pubsub_channels_moved" in text for text in logs)
