"""Portal routes for challenges: create, read (with long poll), cancel and the result websocket."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any

from aiohttp import WSCloseCode, web
from redis.exceptions import RedisError

from approvals.challenge import effective_status, portal_view
from approvals.events import PROGRESS_MESSAGES
from approvals.ids import new_challenge_id
from approvals.numbers import new_number
from approvals.records import ChallengeRecord
from approvals.store.challenges import NewChallenge, ended_record
from approvals.store.durability import ReplicaAckTimeout
from approvals.store.outcomes import CreateResult, EndResult
from gateway.auth import optional_api_key, require_key, watch_token, watch_token_valid
from gateway.bodies import CreateChallenge, read_body
from gateway.endings import respond_to_end
from gateway.outcomes import create_refused
from gateway.problems import ProblemError
from gateway.responses import dumps, json_response
from gateway.services import Services, services, tag_request
from gateway.sockets import CleanClosingWebSocket, client_left, listen_to_client, websocket_route
from gateway.waiters import RESYNC, Inbox

MAX_WAIT_SECONDS = 55
DRAIN_MARGIN_SECONDS = 0.5
REREAD_SECONDS = 0.5  # a waiter whose re-read failed (Redis failing over) reads again this soon
CONFIRM_PATIENCE_SECONDS = 10.0  # then a waiter whose result cannot be confirmed closes (1013)
routes = web.RouteTableDef()


def _created_body(
    svc: Services, record: ChallengeRecord, *, deduplicated: bool, now_ms: int
) -> dict[str, Any]:
    token = watch_token(svc.settings.secret_key_bytes, record.id)
    ws_base = svc.settings.public_url.replace("https://", "wss://").replace("http://", "ws://")
    return {
        **portal_view(record, now_ms),
        "watch_token": token,
        "watch_url": f"{ws_base}/v1/challenges/{record.id}/ws?watch_token={token}",
        "deduplicated": deduplicated,
        "devices": record.devices,
    }


@routes.post("/v1/challenges")
async def create_challenge(request: web.Request) -> web.Response:
    """Create a login challenge and queue its push (one atomic step)."""
    identity = await require_key(request)
    body = await read_body(request, CreateChallenge)
    svc = services(request)
    tag_request(request, tenant=identity.tenant)
    policy = await svc.policy_cache.get(identity.tenant)
    matching = policy.number_matching if body.number_matching is None else body.number_matching
    uk = svc.backend.user_keys(identity.tenant, body.user_id)
    new = NewChallenge(
        challenge_id=new_challenge_id(uk.shard),
        tenant=identity.tenant,
        user_id=body.user_id,
        resource=body.resource,
        app_name=body.app_name,
        context=body.context.model_dump(exclude_none=True),
        number_matching=matching,
        number=new_number(policy.number_digits) if matching else "",
        nonce=secrets.token_urlsafe(16),
    )
    outcome = await svc.challenges.create(new, policy)
    svc.metrics.challenges.labels(outcome.result).inc()
    if outcome.record is None:
        raise create_refused(outcome)
    deduplicated = outcome.result is CreateResult.DEDUPLICATED
    tag_request(request, challenge_id=outcome.record.id)
    body_out = _created_body(svc, outcome.record, deduplicated=deduplicated, now_ms=svc.now_ms())
    return json_response(body_out, status=200 if deduplicated else 201)


async def authorized_challenge(request: web.Request) -> ChallengeRecord:
    """The challenge of the path, for its tenant's key or its own watch token; else 404."""
    svc = services(request)
    challenge_id = request.match_info["challenge_id"]
    token = request.query.get("watch_token")
    identity = await optional_api_key(request)
    if identity is None and token is None:
        await require_key(request)
    record = await svc.challenges.get(challenge_id)
    if record is None:
        raise ProblemError("not_found", "no such challenge")
    if identity is not None:
        if record.tenant != identity.tenant:
            raise ProblemError("not_found", "no such challenge")
    elif not watch_token_valid(svc.settings.secret_key_bytes, challenge_id, token or ""):
        raise ProblemError("not_found", "no such challenge")
    tag_request(request, tenant=record.tenant)
    tag_request(request, challenge_id=challenge_id)
    return record


def _wait_seconds(request: web.Request) -> float:
    raw = request.query.get("wait")
    if raw is None:
        return 0.0
    if not raw.isdigit() or len(raw) > 3 or int(raw) > MAX_WAIT_SECONDS:
        raise ProblemError(
            "invalid_request",
            f"wait must be whole seconds from 0 to {MAX_WAIT_SECONDS}",
            errors=[{"field": "wait", "message": f"integer 0..{MAX_WAIT_SECONDS}"}],
        )
    return float(raw)


@routes.get("/v1/challenges/{challenge_id}")
async def get_challenge(request: web.Request) -> web.Response:
    """Read a challenge; with ``?wait=N`` hold until it ends or N seconds pass."""
    wait = _wait_seconds(request)
    record = await authorized_challenge(request)
    svc = services(request)
    if wait > 0 and effective_status(record, svc.now_ms()) == "pending":
        record = await _wait_for_end(svc, record, wait)
    record = await confirmed(svc, record)
    return json_response(portal_view(record, svc.now_ms()))


#: ended states that follow from the record alone and need no confirmation
_SELF_EVIDENT = ("pending", "expired")


async def confirmed(svc: Services, record: ChallengeRecord) -> ChallengeRecord:
    """The record as a portal may be told it: an ended state only once it reached the
    replicas, so that no failover can take it back (SPEC: terminal states never change).
    When it changed meanwhile (a failover already took it back), the fresh record is
    confirmed instead. Raises a RedisError (503) when that cannot be established."""
    for _ in range(3):
        if record.status in _SELF_EVIDENT or await svc.challenges.confirm(record):
            return record
        fresh = await svc.challenges.get(record.id)
        if fresh is None:
            break
        record = fresh
    raise ReplicaAckTimeout("the challenge's state could not be confirmed")


async def _wait_for_end(svc: Services, record: ChallengeRecord, wait: float) -> ChallengeRecord:
    channel = svc.challenges.channel(record.id)
    assert channel is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    async with svc.hub.subscription(channel) as inbox:
        while True:
            fresh = await svc.challenges.get(record.id)
            if fresh is None:
                return record
            record = fresh
            now_ms = svc.now_ms()
            if effective_status(record, now_ms) != "pending":
                break
            until_expiry = (record.expires_at_ms - now_ms) / 1000
            remaining = min(deadline - loop.time(), until_expiry + 0.05)
            if svc.drain_deadline is not None:  # answer before the drain cuts the request
                remaining = min(remaining, svc.drain_deadline - DRAIN_MARGIN_SECONDS - loop.time())
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_next_ending(inbox), remaining)
    return await _settle_expiry(svc, record)


async def _next_ending(inbox: Inbox) -> None:
    while True:
        message = await inbox.get()
        if message == RESYNC or ended_record(message) is not None:
            return


async def _settle_expiry(svc: Services, record: ChallengeRecord) -> ChallengeRecord:
    """If the deadline passed with nobody recording it, record the expiry now."""
    now_ms = svc.now_ms()
    if record.status == "pending" and effective_status(record, now_ms) == "expired":
        policy = await svc.policy_cache.get(record.tenant)
        outcome = await svc.challenges.expire(record, retention_s=policy.result_retention_seconds)
        if outcome.result is EndResult.EXPIRED:
            svc.metrics.challenges.labels("expired").inc()
        if outcome.record:
            return outcome.record
    return record


@routes.delete("/v1/challenges/{challenge_id}")
async def cancel_challenge(request: web.Request) -> web.Response:
    """The portal cancels a pending challenge (the user chose another method)."""
    identity = await require_key(request)
    svc = services(request)
    record = await svc.challenges.get(request.match_info["challenge_id"])
    if record is None or record.tenant != identity.tenant:
        raise ProblemError("not_found", "no such challenge")
    tag_request(request, tenant=identity.tenant, challenge_id=record.id)
    policy = await svc.policy_cache.get(identity.tenant)
    outcome = await svc.challenges.end(
        record,
        status="cancelled",
        reason="portal_cancelled",
        method=None,
        retention_s=policy.result_retention_seconds,
        owned_by=identity.tenant,
    )
    return respond_to_end(svc, outcome, counted="cancelled")


async def _watched_challenge(request: web.Request, svc: Services) -> tuple[str, ChallengeRecord]:
    record = await authorized_challenge(request)
    channel = svc.challenges.channel(record.id)
    assert channel is not None
    return channel, record


async def _reread(svc: Services, record: ChallengeRecord) -> ChallengeRecord:
    return await svc.challenges.get(record.id) or record


#: the context of a waiting socket's slim record (shared: one dict for every waiting socket)
_WAITING_CONTEXT: dict[str, Any] = {}


def _waiting(record: ChallengeRecord) -> ChallengeRecord:
    """What a socket keeps while it waits: enough to time, record and confirm the expiry
    (about 1 KB less per idle socket); the full record comes with the end or a re-read."""
    if record.context is _WAITING_CONTEXT:
        return record
    return ChallengeRecord(
        record.id,
        tenant=record.tenant,
        user_id=record.user_id,
        context=_WAITING_CONTEXT,
        status=record.status,
        expires_at_ms=record.expires_at_ms,
    )


async def _stream_challenge(
    svc: Services,
    ws: CleanClosingWebSocket,
    inbox: Inbox,
    record: ChallengeRecord,
) -> None:
    record = await confirmed(svc, record)
    await ws.send_json(
        {"type": "snapshot", "challenge": portal_view(record, svc.now_ms())}, dumps=dumps
    )
    # The reader's end arrives through the same inbox, so an idle socket waits on one
    # inbox.get() under a timer instead of a getter task plus asyncio.wait per wake-up.
    listen_to_client(ws, inbox)
    stale = False  # the last re-read failed: read again soon, whatever arrives
    unconfirmed: float | None = None  # since when an ended state could not be confirmed
    loop = asyncio.get_running_loop()
    while not ws.closed:
        now_ms = svc.now_ms()
        if effective_status(record, now_ms) != "pending":
            record = await _settle_expiry(svc, record)
            if record.context is _WAITING_CONTEXT:  # the expiry step found the record gone
                await ws.close(code=WSCloseCode.OK)
                return
            try:
                record = await confirmed(svc, record)
            except RedisError:
                unconfirmed = unconfirmed or loop.time()
                if loop.time() - unconfirmed > CONFIRM_PATIENCE_SECONDS:
                    raise
                await asyncio.sleep(REREAD_SECONDS)  # never tell what may be taken back
                continue
            if effective_status(record, svc.now_ms()) == "pending":
                continue  # a failover took the end back: wait on
            await ws.send_json(
                {"type": "result", "challenge": portal_view(record, now_ms)}, dumps=dumps
            )
            await ws.close(code=WSCloseCode.OK)
            return
        record = _waiting(record)
        until_expiry = max(0.0, (record.expires_at_ms - now_ms) / 1000) + 0.05
        if stale:
            until_expiry = min(until_expiry, REREAD_SECONDS)
        try:
            async with asyncio.timeout(until_expiry):
                message = await inbox.get()
        except TimeoutError:
            if not stale:
                continue  # due: the expiry step reads the record as it records the expiry
            message = "tick"
        if client_left(ws, message):
            return
        if message in PROGRESS_MESSAGES:
            await ws.send_json({"type": message}, dumps=dumps)
            continue
        ended = ended_record(message)
        if ended is not None:
            record = ended  # the end notice carries the record: no re-read
            continue
        try:
            refreshed = await svc.challenges.get(record.id)
        except RedisError:
            stale = True  # fail closed: read again until the backend answers, never guess
            continue
        stale = False
        if refreshed is None:
            await ws.close(code=WSCloseCode.OK)
            return
        record = refreshed


challenge_websocket = routes.get("/v1/challenges/{challenge_id}/ws")(
    websocket_route(
        "portal",
        "Stream a challenge's progress and result to the portal or browser waiting on it.",
        authorize=_watched_challenge,
        read=_reread,
        relay=_stream_challenge,
    )
)
