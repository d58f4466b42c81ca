"""Challenge records in Redis: create, read, answer, end, progress and sweeps."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import orjson

from approvals.events import Progress
from approvals.ids import shard_of
from approvals.records import ChallengeRecord
from approvals.store import keys
from approvals.store.backend import Backend, decode_hash
from approvals.store.outcomes import CreateResult, EndResult, Refusal
from policies.policy import Policy

#: the end notice on a challenge's channel: this prefix, then the ended record as a JSON array
ENDED_PREFIX = "ended:"


def ended_record(message: str) -> ChallengeRecord | None:
    """The record an end notice carries (None for any other message)."""
    if not message.startswith(ENDED_PREFIX):
        return None
    return ChallengeRecord.from_hash(decode_hash(json.loads(message[len(ENDED_PREFIX) :])))


@dataclass(frozen=True, slots=True)
class NewChallenge:
    """Everything the create script needs, decided by the caller beforehand."""

    challenge_id: str
    tenant: str
    user_id: str
    resource: str
    app_name: str
    context: dict[str, Any]
    number_matching: bool
    number: str
    nonce: str


@dataclass(frozen=True, slots=True)
class CreateOutcome:
    """What the create script decided; ``record``: the new challenge (``created``) or the
    pending one for the same resource (``deduplicated``), as the script read or wrote it."""

    result: CreateResult
    record: ChallengeRecord | None = None
    retry_after_ms: int | None = None
    why: Refusal = Refusal.NONE


@dataclass(frozen=True, slots=True)
class EndOutcome:
    """What an end or answer script decided, with the record after the step (None when
    the script did not return it)."""

    result: EndResult
    record: ChallengeRecord | None


class ChallengeStore:
    """The only code that touches challenge keys."""

    def __init__(self, backend: Backend) -> None:
        self._b = backend

    def shard(self, challenge_id: str) -> int | None:
        """The shard an id encodes (None for a malformed id)."""
        return shard_of(challenge_id, self._b.shards)

    def channel(self, challenge_id: str) -> str | None:
        """The pub/sub channel that carries a challenge's progress."""
        shard = self.shard(challenge_id)
        return None if shard is None else keys.challenge_channel(shard, challenge_id)

    async def create(self, new: NewChallenge, policy: Policy) -> CreateOutcome:
        """Run the atomic create step (one round trip)."""
        uk = self._b.user_keys(new.tenant, new.user_id)
        shard = uk.shard
        # creates arriving in the same loop turn share one pipeline: one connection checkout,
        # one write and one read for all of them (still one atomic script each)
        reply = await self._b.batched(
            self._b.scripts.create_challenge,
            [
                uk.user,
                uk.active_devices,
                uk.dedupe(new.resource),
                keys.challenge(shard, new.challenge_id),
                uk.pending,
                uk.push_window,
                keys.jobs(shard),
                keys.outbox(shard),
                keys.expiry_index(shard),
                uk.devices,
            ],
            # one JSON array of strings (orjson, UTF-8 as is): one argument for redis-py to
            # encode instead of 18
            [
                orjson.dumps(
                    [
                        str(self._b.shift_ms),
                        new.challenge_id,
                        str(policy.push_ttl_seconds * 1000),
                        str(policy.dedupe_seconds * 1000),
                        str(policy.result_retention_seconds * 1000),
                        str(policy.max_pushes_per_window),
                        str(policy.push_window_seconds * 1000),
                        str(policy.max_unanswered_pushes),
                        new.tenant,
                        new.user_id,
                        new.resource,
                        new.app_name,
                        json.dumps(new.context, separators=(",", ":")),
                        "1" if new.number_matching else "0",
                        new.number,
                        new.nonce,
                        str(self._b.jobs_maxlen),
                        str(self._b.outbox_maxlen),
                    ]
                )
            ],
        )
        return _create_outcome(reply, new.context)

    async def get(self, challenge_id: str) -> ChallengeRecord | None:
        """The record, or None when the id is malformed or the record is gone."""
        shard = self.shard(challenge_id)
        if shard is None:
            return None
        record = decode_hash(await self._b.redis.hgetall(keys.challenge(shard, challenge_id)))
        return ChallengeRecord.from_hash(record) if record else None

    def _end_keys(self, record: ChallengeRecord, shard: int) -> list[str]:
        uk = self._b.user_keys(record.tenant, record.user_id)
        return [
            keys.challenge(shard, record.id),
            uk.pending,
            keys.expiry_index(shard),
            keys.outbox(shard),
            keys.jobs(shard),
            uk.user,
        ]

    async def answer(
        self,
        record: ChallengeRecord,
        *,
        device_id: str,
        status: str,
        reason: str | None,
        sign_count: int,
        policy: Policy,
    ) -> EndOutcome:
        """Apply a verified device answer; the script decides if it is the first."""
        shard = self.shard(record.id)
        assert shard is not None
        uk = self._b.user_keys(record.tenant, record.user_id)
        reply = await self._b.durability.run(
            self._b.scripts.answer_challenge,
            [*self._end_keys(record, shard), keys.device(shard, device_id)],
            [
                self._b.shift_ms,
                record.tenant,
                record.user_id,
                device_id,
                status,
                reason or "",
                sign_count,
                policy.result_retention_seconds * 1000,
                policy.fraud_block_seconds * 1000,
                keys.challenge_channel(shard, record.id),
                uk.device_channel,
                self._b.outbox_maxlen,
                self._b.jobs_maxlen,
            ],
        )
        return _end_outcome(reply)

    async def end(
        self,
        record: ChallengeRecord,
        *,
        status: str,
        reason: str | None,
        method: str | None,
        retention_s: int,
        owned_by: str | None = None,
    ) -> EndOutcome:
        """End a pending challenge (cancel, TOTP approval) or expire it if due. With
        ``owned_by`` (a tenant) the script first checks the challenge belongs to it and
        answers ``not_found`` otherwise."""
        shard = self.shard(record.id)
        assert shard is not None
        uk = self._b.user_keys(record.tenant, record.user_id)
        script, end_keys = self._b.scripts.end_challenge, self._end_keys(record, shard)
        args: list[str | int] = [
            self._b.shift_ms,
            owned_by or "",
            status,
            reason or "",
            method or "",
            retention_s * 1000,
            keys.challenge_channel(shard, record.id),
            uk.device_channel,
            self._b.outbox_maxlen,
            self._b.jobs_maxlen,
        ]
        if status == "expired":  # follows from the deadline: a failover that loses it re-derives it
            # expiries falling due together (waiters' timers) share one pipeline
            return _end_outcome(await self._b.batched(script, end_keys, args))
        return _end_outcome(await self._b.durability.run(script, end_keys, args))

    async def confirm(self, record: ChallengeRecord) -> bool:
        """Before a portal is told that a challenge ended: whether the ended state read from
        the primary has reached its replicas (so no failover can take it back). False when
        the record changed since; ReplicaAckTimeout when the replicas did not acknowledge."""
        shard = self.shard(record.id)
        assert shard is not None
        return await self._b.durability.confirm(keys.challenge(shard, record.id), record.status)

    async def expire(self, record: ChallengeRecord, *, retention_s: int) -> EndOutcome:
        """Record the expiry of a challenge whose deadline passed (idempotent)."""
        return await self.end(
            record, status="expired", reason="ttl", method=None, retention_s=retention_s
        )

    async def mark(self, challenge_id: str, progress: Progress, *, device_id: str = "") -> bool:
        """Record a progress fact once while the challenge is pending: set its field, tell
        the waiting portal and append its audit event (if it has one)."""
        shard = self.shard(challenge_id)
        if shard is None:
            return False
        done = await self._b.scripts.mark_progress(
            keys=[keys.challenge(shard, challenge_id), keys.outbox(shard)],
            args=[
                self._b.shift_ms,
                progress.field,
                progress.message,
                progress.event or "",
                keys.challenge_channel(shard, challenge_id),
                self._b.outbox_maxlen,
                device_id,
            ],
        )
        return bool(done)

    async def set_push_error(self, challenge_id: str, error: str) -> None:
        """Remember the last delivery error on the record (shown to the portal)."""
        shard = self.shard(challenge_id)
        if shard is not None:
            await self._b.redis.hset(keys.challenge(shard, challenge_id), "push_error", error)

    async def pending_for_user(
        self, tenant: str, user_id: str, now_ms: int
    ) -> list[ChallengeRecord]:
        """The user's challenges still pending at ``now_ms``, oldest first."""
        uk = self._b.user_keys(tenant, user_id)
        ids = await self._b.redis.zrangebyscore(uk.pending, f"({now_ms}", "+inf")
        if not ids:
            return []
        pipe = self._b.redis.pipeline(transaction=False)
        for cid in ids:
            pipe.hgetall(keys.challenge(uk.shard, cid))
        records = [decode_hash(r) for r in await pipe.execute()]
        return [ChallengeRecord.from_hash(r) for r in records if r.get("status") == "pending"]

    async def due_for_expiry(self, now_ms: int, limit: int = 200) -> dict[int, list[str]]:
        """Ids of challenges whose deadline has passed, by shard (every shard in one
        pipelined read; shards that could not be read are left out)."""
        return await self._b.due_in_each_shard(keys.expiry_index, now_ms, limit)

    async def drop_from_expiry(self, shard: int, challenge_id: str) -> None:
        """Forget an index entry whose record is already gone."""
        await self._b.redis.zrem(keys.expiry_index(shard), challenge_id)


def _create_outcome(reply: Any, context: dict[str, Any]) -> CreateOutcome:
    """The create script's reply; ``context``: the one it stored (not parsed back)."""
    result = CreateResult(str(reply[0]))
    if result is CreateResult.CREATED:
        record = ChallengeRecord.from_hash(decode_hash(reply[1]), context)
        return CreateOutcome(result, record=record)
    if result is CreateResult.DEDUPLICATED:
        return CreateOutcome(result, record=ChallengeRecord.from_hash(decode_hash(reply[1])))
    if result is CreateResult.NO_PUSH_DEVICE:
        return CreateOutcome(result)
    why = Refusal(str(reply[2])) if len(reply) > 2 else Refusal.NONE
    return CreateOutcome(result, retry_after_ms=int(reply[1]), why=why)


def _end_outcome(reply: Any) -> EndOutcome:
    result = EndResult(str(reply[0]))
    fields = decode_hash(reply[1]) if len(reply) > 1 and isinstance(reply[1], list) else {}
    return EndOutcome(result, ChallengeRecord.from_hash(fields) if fields else None)
