"""Delivery state per (challenge, device) in Redis: what was sent, what is in flight.

Every step is one script that reads the challenge's state and records the delivery fact in
the same atomic step, and acknowledges the job when it is done, so a retried or reclaimed
job never sends a prompt a provider already accepted and never sends one after the end.
The fields live on the challenge record (they expire with it): ``inapp`` (the in-app
channel was told), ``p:<device>`` (prompt) and ``e:<device>`` (follow-up); see
``_lib.lua`` (``attempt_state``) for their values.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from approvals.ids import shard_of
from approvals.records import parse_context
from approvals.store import keys
from approvals.store.backend import Backend

JOBS_GROUP = "pushers"


class Phase(enum.StrEnum):
    """Which notification an attempt is for."""

    PROMPT = "p"  # the sign-in prompt
    FOLLOW_UP = "e"  # the "ended" notification that replaces it


class Outcome(enum.StrEnum):
    """How one attempt ended, as recorded on the challenge."""

    ACCEPTED = "s"
    RETRY = "r"
    DEAD_TOKEN = "x"  # noqa: S105 - an outcome name, not a password
    FAILED = "f"


@dataclass(frozen=True, slots=True)
class Route:
    """Where one device's notification goes."""

    device_id: str
    platform: str
    token: str
    topic: str


@dataclass(frozen=True, slots=True)
class Plan:
    """What a begin step decided: ``send`` the routes (claimed for this owner), ``done``
    (nothing left, job acknowledged) or ``dropped`` (challenge not deliverable, acknowledged).
    ``wait_ms`` > 0: other attempts are in flight; begin again after that long."""

    result: str
    expires_at_ms: int = 0
    app_name: str = ""
    context: dict[str, Any] = field(default_factory=dict)
    final_status: str = ""
    wait_ms: int = 0
    unroutable: tuple[str, ...] = ()
    routes: tuple[Route, ...] = ()


@dataclass(frozen=True, slots=True)
class Job:
    """One job entry of a shard's stream."""

    stream: str
    entry_id: str
    kind: str  # "challenge" | "ended"
    challenge_id: str
    tenant: str
    user_id: str
    deciding_device: str = ""

    @classmethod
    def from_entry(cls, stream: str, entry_id: str, fields: dict[str, str]) -> Job:
        return cls(
            stream=stream,
            entry_id=entry_id,
            kind=fields.get("kind", ""),
            challenge_id=fields.get("cid", ""),
            tenant=fields.get("t", ""),
            user_id=fields.get("u", ""),
            deciding_device=fields.get("device_id", ""),
        )


def _plan(reply: Sequence[Any]) -> Plan:
    result = str(reply[0])
    if result != "send":
        return Plan(result)
    unroutable = json.loads(reply[6])
    flat = [str(x) for x in reply[7:]]
    routes = tuple(Route(*flat[i : i + 4]) for i in range(0, len(flat), 4))
    return Plan(
        result,
        expires_at_ms=int(reply[1]),
        app_name=str(reply[2]),
        context=parse_context(str(reply[3] or "{}")),
        final_status=str(reply[4]),
        wait_ms=int(reply[5]),
        unroutable=tuple(unroutable) if isinstance(unroutable, list) else (),
        routes=routes,
    )


def _begin_args(job: Job, shard: int, owner: str, attempt_ms: int, shift_ms: int) -> list[Any]:
    """The arguments both begin scripts start with (``shift_ms``: the clock shift tests set)."""
    return [shift_ms, owner, attempt_ms, job.entry_id, JOBS_GROUP, keys.device(shard, "")]


class DeliveryStore:
    """The only code that reads or writes delivery state."""

    def __init__(self, backend: Backend) -> None:
        self._b = backend

    def _shard(self, job: Job) -> int:
        return self._b.user_keys(job.tenant, job.user_id).shard

    async def owner_of(self, job: Job) -> Job:
        """``job`` with tenant and user filled in from the record when the entry lacks them."""
        if job.tenant and job.user_id:
            return job
        shard = shard_of(job.challenge_id, self._b.shards)
        if shard is None:
            return job
        tenant, user_id = await self._b.redis.hmget(
            keys.challenge(shard, job.challenge_id), "tenant", "user_id"
        )
        return Job(
            job.stream,
            job.entry_id,
            job.kind,
            job.challenge_id,
            tenant or "",
            user_id or "",
            job.deciding_device,
        )

    async def begin_prompt(
        self,
        job: Job,
        *,
        owner: str,
        attempt_ms: int,
        min_left_ms: int,
        platforms: Sequence[str],
    ) -> Plan:
        """Drop the job if the challenge ended, tell the in-app channel once, claim first
        attempts (one script)."""
        uk = self._b.user_keys(job.tenant, job.user_id)
        reply = await self._b.batched(
            self._b.scripts.delivery_begin,
            [
                keys.challenge(uk.shard, job.challenge_id),
                uk.active_devices,
                job.stream,
                keys.outbox(uk.shard),
            ],
            [
                *_begin_args(job, uk.shard, owner, attempt_ms, self._b.shift_ms),
                uk.device_channel,
                keys.challenge_channel(uk.shard, job.challenge_id),
                min_left_ms,
                self._b.outbox_maxlen,
                *platforms,
            ],
        )
        return _plan(reply)

    async def begin_follow_up(
        self, job: Job, *, owner: str, attempt_ms: int, platforms: Sequence[str]
    ) -> Plan:
        """Claim follow-ups for the devices that may show the prompt (one script)."""
        uk = self._b.user_keys(job.tenant, job.user_id)
        reply = await self._b.batched(
            self._b.scripts.ending_begin,
            [keys.challenge(uk.shard, job.challenge_id), uk.active_devices, job.stream],
            [
                *_begin_args(job, uk.shard, owner, attempt_ms, self._b.shift_ms),
                job.deciding_device,
                *platforms,
            ],
        )
        return _plan(reply)

    async def claim_retry(
        self,
        job: Job,
        phase: Phase,
        device_id: str,
        *,
        owner: str,
        attempt_ms: int,
        min_left_ms: int,
    ) -> str:
        """Right before a retry: ``go`` (claimed) or why not (ended, expired, done, busy)."""
        reply = await self._b.batched(
            self._b.scripts.delivery_gate,
            [keys.challenge(self._shard(job), job.challenge_id)],
            [self._b.shift_ms, owner, attempt_ms, f"{phase}:{device_id}", min_left_ms],
        )
        return str(reply)

    async def settle(
        self,
        job: Job,
        phase: Phase,
        device_id: str,
        outcome: Outcome,
        *,
        owner: str,
        last: bool = False,
        error: str = "",
    ) -> None:
        """Record an attempt's outcome; ``last`` also acknowledges the job (one script)."""
        shard = self._shard(job)
        await self._b.batched(
            self._b.scripts.delivery_settle,
            [keys.challenge(shard, job.challenge_id), job.stream, keys.outbox(shard)],
            [
                self._b.shift_ms,
                owner,
                f"{phase}:{device_id}",
                outcome.value,
                job.entry_id if last else "",
                JOBS_GROUP,
                keys.challenge_channel(shard, job.challenge_id),
                self._b.outbox_maxlen,
                device_id,
                error,
            ],
        )

    async def acknowledge(self, job: Job) -> None:
        """Acknowledge a job that cannot be delivered (a malformed entry)."""
        await self._b.redis.xack(job.stream, JOBS_GROUP, job.entry_id)
