"""An operator adds a primary to a live three-primary Cluster and rebalances the slots onto it
(``valkey-cli --cluster add-node`` and ``rebalance``, the tools' own commands) while portals
wait, phones answer and pushes flow: the shards whose slots moved are served by the new
primary, the waiting portals follow their channels there, and nothing is lost or doubled.

With the default shard layout each primary serves an equal share of the shards, so a Cluster
grows this way, live, up to as many primaries as there are shards (``PUSHGATE_SHARDS``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

from approvals.ids import shard_of
from pushgate.embedded import EmbeddedRedis, cluster_node_args, find_server_binary
from tests.cluster import _port_with_free_bus, embedded_cluster, node_info, until
from tests.integration.cluster_rig import SHARDS, Watch, cluster_stack, create, watch
from tests.integration.delivery_rig import copies
from tests.integration.processes import wait_until
from tests.integration.test_cluster_failover import final_status, open_challenges

CLI = os.path.join(os.path.dirname(find_server_binary()), "valkey-cli")


def valkey_cli(*args: str) -> str:
    done = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout


def rebalance(address: str) -> str:
    """``--cluster rebalance`` onto the empty primary, as an operator runs it: when a slot
    move is interrupted (a node briefly unsure of the cluster on a loaded machine), ``--cluster
    fix`` closes the open slot and the rebalance runs again (three times at most)."""
    for _ in range(2):
        done = subprocess.run(
            [CLI, "--cluster", "rebalance", address, "--cluster-use-empty-masters",
             "--cluster-yes"],
            capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        if done.returncode == 0:
            return done.stdout
        until(lambda: nodes_agree(address) or fix(address), "the cluster fixed", 60)
    return valkey_cli(
        "--cluster", "rebalance", address, "--cluster-use-empty-masters", "--cluster-yes"
    )


def fix(address: str) -> bool:
    done = subprocess.run(
        [CLI, "--cluster", "fix", address, "--cluster-yes"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return done.returncode == 0 and nodes_agree(address)


def nodes_agree(address: str) -> bool:
    """``valkey-cli --cluster check``: every node has the same view (after a node joined)."""
    done = subprocess.run(
        [CLI, "--cluster", "check", address], capture_output=True, text=True, timeout=60
    )
    return done.returncode == 0


async def test_a_primary_added_and_rebalanced_under_load_takes_its_share_of_shards(
    tmp_path: Path,
) -> None:
    """add-node + rebalance during traffic: every portal ends with the true state, answers and
    creates during the move succeed (503s retried), the new primary serves its share of the
    shards and delivers the prompts of challenges created on them afterwards."""
    with embedded_cluster(node_timeout_ms=5000) as nodes:
        new = EmbeddedRedis(
            port=_port_with_free_bus(), appendonly=False, extra_args=cluster_node_args(5000)
        )
        new.start()
        try:
            async with cluster_stack(nodes, tmp_path, redis_wait_replicas=0) as rig:
                s = rig.s
                phones = {
                    f"user{i}": await s.phone(f"user{i}", "apns", f"{i:02x}" * 32)
                    for i in range(12)
                }
                tokens = {user: f"{i:02x}" * 32 for i, user in enumerate(phones)}
                await s.worker("worker", worker_concurrency=16)
                before = await open_challenges(rig, phones, "crm")
                first = f"127.0.0.1:{nodes[0].port}"
                valkey_cli("--cluster", "add-node", f"127.0.0.1:{new.port}", first)
                every = [*nodes, new]
                until(lambda: all(node_info(n.port)["cluster_known_nodes"] == "4" for n in every)
                      and nodes_agree(first), "every node to agree on the new one")  # fmt: skip
                moving = asyncio.create_task(asyncio.to_thread(rebalance, first))
                for cid, (user, body, _, _) in before.items():  # answered while slots move
                    assert await rig.answer(phones[user], cid, "approve", body["number"])
                during = {}
                for index, user in enumerate(phones):
                    during[user] = await create(rig.gateways[index % 2], user, "vpn")
                rebalanced = await moving

                until(lambda: nodes_agree(first), "every node to agree on the new slots")
                on_new = {
                    shard for shard in range(SHARDS)
                    if rig.primary_of(f"ch{shard:04x}" + "a" * 22, ask=new) == new.port
                }  # fmt: skip
                assert len(on_new) >= SHARDS // 4 - 1, rebalanced[-3000:]
                movers = {u: b for u, b in during.items() if shard_of(b["id"], SHARDS) in on_new}
                waiting: dict[str, tuple[asyncio.Task[None], Watch]] = {}
                for body in movers.values():
                    seen = Watch()
                    task = asyncio.create_task(
                        watch(rig.second, body["id"], body["watch_token"], seen)
                    )
                    waiting[body["id"]] = (task, seen)

                async def prompted() -> bool:
                    accepted = copies(await s.apns.accepted(), "prompt")
                    return all(accepted[(b["id"], tokens[u])] == 1 for u, b in movers.items())

                await wait_until(prompted, "the moved shards' challenges pushed", 30)
                for user, body in movers.items():
                    assert await rig.answer(phones[user], body["id"], "approve", body["number"])
                await asyncio.gather(*(task for task, _ in waiting.values()))
                await asyncio.gather(*(entry[3] for entry in before.values()))

                for cid, (_, _, seen, _) in before.items():
                    assert seen.result is not None
                    assert seen.result["status"] == await final_status(s.portal, cid) == "approved"
                for _, seen in waiting.values():
                    assert seen.result is not None and seen.result["status"] == "approved"
                assert max(copies(await s.apns.accepted(), "prompt").values()) == 1
                assert all(statuses.count(200) <= 1 for statuses in rig.answers.values())
                assert movers
        finally:
            new.close()
