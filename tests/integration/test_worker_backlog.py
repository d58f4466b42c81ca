"""The worker exports the push job backlog per shard, the metric the worker autoscaler uses."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from approvals.ids import shard_of
from tests.integration.delivery_rig import SHARDS, Stack, stack
from tests.integration.processes import wait_until

BACKLOG = re.compile(r'^pushgate_job_backlog\{shard="(\d+)",state="(\w+)"\} ([0-9.e+]+)$')


async def backlog(s: Stack, port: int) -> dict[tuple[int, str], float]:
    """``pushgate_job_backlog`` samples of a worker's /metrics, by (shard, state)."""
    async with s.session.get(f"http://127.0.0.1:{port}/metrics") as resp:
        text = await resp.text()
    found = {}
    for line in text.splitlines():
        match = BACKLOG.match(line)
        if match:
            found[(int(match.group(1)), match.group(2))] = float(match.group(3))
    return found


async def test_jobs_held_up_by_a_slow_provider_show_in_their_shards_backlog(
    redis_url: str, tmp_path: Path
) -> None:
    """Five prompts stuck behind a provider that takes 30 s and a worker that sends one at a
    time: /metrics counts each as a pending job in its own shard, and the backlog drains to
    zero in every shard once the provider answers again."""
    async with stack(redis_url, tmp_path) as s:
        for index in range(5):
            await s.phone(f"user{index}", "apns", f"{index:02x}" * 32)
        await s.apns.faults(latency=30)
        # Created before the worker starts, so each shard's reader takes all of its shard's
        # jobs in its first read: with one send at a time, a job arriving later would wait
        # unread (lag) behind the first one for the whole of its retries.
        created = [
            (await s.portal.create_challenge(f"user{index}")).body["id"] for index in range(5)
        ]
        _, port = await s.worker("worker", worker_concurrency=1)
        per_shard = Counter(shard_of(cid, SHARDS) for cid in created)

        async def counted() -> bool:
            seen = await backlog(s, port)
            pending = {shard: seen.get((shard, "pending"), 0) for shard in range(SHARDS)}
            lag = sum(seen.get((shard, "lag"), 0) for shard in range(SHARDS))
            return pending == {shard: per_shard.get(shard, 0) for shard in range(SHARDS)} and (
                lag == 0
            )

        await wait_until(counted, "the backlog per shard in /metrics", 20)
        await s.apns.heal()

        async def drained() -> bool:
            seen = await backlog(s, port)
            return len(seen) == 2 * SHARDS and not any(seen.values())

        await wait_until(drained, "an empty backlog in every shard", 60)
