"""ApnsProvider (real aioapns) against the local APNs stand-in (real HTTP/2, TLS, JWT)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from pusher.payloads import MAX_PAYLOAD_BYTES
from pusher.providers.apns import ApnsProvider
from pusher.providers.base import PushMessage, SendOutcome
from pusher.standins.apns import ApnsStandin
from pusher.standins.credentials import ApnsKey, make_apns_key
from pusher.standins.runner import StandinThread
from pusher.standins.tls import TlsMaterial, make_tls
from tests.integration.standins import until_nothing_in_progress

TOPIC = "com.example.pushgate"
EXPIRES_AT = 4_102_444_800  # far ahead, so the stand-in never sees a past expiry


def message(**changes: Any) -> PushMessage:
    base = PushMessage(
        kind="challenge",
        device_id="dev_1",
        platform="apns",
        token="a1" * 32,
        topic=TOPIC,
        challenge_id="ch_4a1b",
        tenant="acme",
        app_name="VPN",
        location="Berlin, DE",
        expires_at=EXPIRES_AT,
        now=EXPIRES_AT - 60,
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls(tmp_path_factory.mktemp("apns-tls"))


@pytest.fixture(scope="module")
def key() -> ApnsKey:
    return make_apns_key()


@pytest.fixture
def standin(tls: TlsMaterial, key: ApnsKey) -> Iterator[tuple[ApnsStandin, StandinThread]]:
    apns = ApnsStandin(topics={TOPIC})
    apns.trust(key)
    thread = StandinThread(apns, tls)
    thread.start()
    yield apns, thread
    thread.stop()


def make_provider(
    thread: StandinThread, key: ApnsKey, *, pem: str | None = None, timeout: float = 5.0
) -> ApnsProvider:
    return ApnsProvider(
        key=pem or key.pem,
        key_id=key.key_id,
        team_id=key.team_id,
        topic=TOPIC,
        endpoint=thread.url,
        ca_file=thread.tls.ca_file,
        timeout=timeout,
    )


@pytest.fixture
async def provider(
    standin: tuple[ApnsStandin, StandinThread], key: ApnsKey
) -> AsyncIterator[ApnsProvider]:
    apns_provider = make_provider(standin[1], key)
    await apns_provider.start()
    yield apns_provider
    await apns_provider.close()


async def test_challenge_reaches_apns_with_apples_headers_and_payload(
    provider: ApnsProvider, standin: tuple[ApnsStandin, StandinThread]
) -> None:
    """Apple receives push type alert, priority 10, exact expiration, collapse id and payload."""
    result = await provider.send(message())
    assert result.outcome is SendOutcome.DELIVERED
    assert result.status == 200
    (seen,) = standin[0].received.all()
    assert seen.path == "/3/device/" + "a1" * 32
    assert seen.http_version == "2"
    assert seen.headers["apns-id"] == result.provider_id
    assert seen.headers["apns-topic"] == TOPIC
    assert seen.headers["apns-push-type"] == "alert"
    assert seen.headers["apns-priority"] == "10"
    assert seen.headers["apns-expiration"] == str(EXPIRES_AT)
    assert seen.headers["apns-collapse-id"] == "ch_4a1b"
    assert seen.payload == {
        "aps": {
            "alert": {"title": "Sign-in request", "body": "VPN · Berlin, DE"},
            "sound": "default",
            "category": "PUSHGATE_CHALLENGE",
        },
        "challenge_id": "ch_4a1b",
        "tenant": "acme",
    }


async def test_provider_token_is_an_es256_jwt_of_the_team_key(
    provider: ApnsProvider, standin: tuple[ApnsStandin, StandinThread], key: ApnsKey
) -> None:
    """The bearer token names the key id and team and verifies with the .p8's public key."""
    await provider.send(message())
    (seen,) = standin[0].received.all()
    scheme, token = seen.headers["authorization"].split(" ")
    assert scheme == "bearer"
    assert jwt.get_unverified_header(token)["kid"] == key.key_id
    claims = jwt.decode(token, key.public_pem, algorithms=["ES256"])
    assert claims["iss"] == key.team_id


async def test_wrong_signing_key_gets_invalid_provider_token_and_fails(
    standin: tuple[ApnsStandin, StandinThread], key: ApnsKey
) -> None:
    """A token signed by another key is refused with 403 and is not retried."""
    impostor = make_provider(standin[1], key, pem=make_apns_key().pem)
    await impostor.start()
    try:
        result = await impostor.send(message())
    finally:
        await impostor.close()
    assert (result.outcome, result.status, result.reason) == (
        SendOutcome.FAILED,
        403,
        "InvalidProviderToken",
    )


async def test_unregistered_token_410_marks_the_token_invalid(
    provider: ApnsProvider, standin: tuple[ApnsStandin, StandinThread]
) -> None:
    """410 Unregistered means the app is gone from that phone."""
    standin[0].faults.add_invalid_tokens("a1" * 32)
    result = await provider.send(message())
    assert (result.outcome, result.status, result.reason) == (
        SendOutcome.INVALID_TOKEN,
        410,
        "Unregistered",
    )


async def test_bad_device_token_marks_the_token_invalid(provider: ApnsProvider) -> None:
    """A malformed token gets 400 BadDeviceToken, a dead token too."""
    result = await provider.send(message(token="not-a-device-token"))
    assert (result.outcome, result.status, result.reason) == (
        SendOutcome.INVALID_TOKEN,
        400,
        "BadDeviceToken",
    )


async def test_other_bad_requests_fail_without_retry(
    provider: ApnsProvider, standin: tuple[ApnsStandin, StandinThread]
) -> None:
    """A topic the team may not push to is a permanent failure for this message."""
    result = await provider.send(message(topic="com.example.other"))
    assert (result.outcome, result.status, result.reason) == (
        SendOutcome.FAILED,
        400,
        "TopicDisallowed",
    )


@pytest.mark.parametrize(
    ("status", "reason", "retry_after"),
    [
        (429, "TooManyRequests", 30.0),
        (500, "InternalServerError", None),
        (503, "ServiceUnavailable", 5.0),
    ],
)
async def test_throttling_and_server_errors_are_retried(
    provider: ApnsProvider,
    standin: tuple[ApnsStandin, StandinThread],
    status: int,
    reason: str,
    retry_after: float | None,
) -> None:
    """429 and 5xx are transient; Retry-After is passed on when APNs sends one."""
    standin[0].faults.fail_next(status, reason, retry_after=retry_after)
    result = await provider.send(message())
    assert (result.outcome, result.status, result.reason) == (SendOutcome.RETRY, status, reason)
    assert result.retry_after == retry_after


async def test_unanswered_request_is_retried_after_the_timeout(
    standin: tuple[ApnsStandin, StandinThread], key: ApnsKey
) -> None:
    """A server that never answers costs one timeout, then the send says RETRY."""
    standin[0].faults.hang_next()
    impatient = make_provider(standin[1], key, timeout=0.5)
    await impatient.start()
    try:
        result = await impatient.send(message())
    finally:
        await impatient.close()
    assert (result.outcome, result.reason) == (SendOutcome.RETRY, "timeout")
    (seen,) = standin[0].received.all()
    assert seen.status is None


async def test_unreachable_endpoint_is_retried_not_raised(key: ApnsKey, tls: TlsMaterial) -> None:
    """Connection refused is a transient failure, reported within the timeout."""
    stopped = StandinThread(ApnsStandin(), tls)
    stopped.start()
    stopped.stop()  # the port is now closed
    provider = make_provider(stopped, key, timeout=0.5)
    await provider.start()
    try:
        result = await provider.send(message())
    finally:
        await provider.close()
    assert result.outcome is SendOutcome.RETRY


async def test_abandoned_request_is_reset_and_never_accepted(
    provider: ApnsProvider, standin: tuple[ApnsStandin, StandinThread]
) -> None:
    """A send cut by its limit resets its stream: APNs never accepts that prompt later."""
    apns = standin[0]
    apns.faults.set_latency(2.0)
    result = await provider.send(message(), limit=0.3)
    assert (result.outcome, result.reason) == (SendOutcome.RETRY, "timeout")
    await until_nothing_in_progress(apns.received)
    assert apns.received.all() == []
    apns.faults.set_latency(0)
    assert (await provider.send(message())).outcome is SendOutcome.DELIVERED


async def test_one_send_is_one_connection_attempt(key: ApnsKey, tls: TlsMaterial) -> None:
    """A refused connection ends the send at once: aioapns's own reconnect loop is not used."""
    accepted = 0

    def refuse(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    provider = ApnsProvider(
        key=key.pem,
        key_id=key.key_id,
        team_id=key.team_id,
        topic=TOPIC,
        endpoint=f"https://127.0.0.1:{port}",
        ca_file=tls.ca_file,
        timeout=5.0,
    )
    await provider.start()
    try:
        result = await provider.send(message())
    finally:
        await provider.close()
        server.close()
        await server.wait_closed()
    assert result.outcome is SendOutcome.RETRY
    assert accepted == 1


async def test_long_fields_are_truncated_to_fit_4096_bytes(
    provider: ApnsProvider, standin: tuple[ApnsStandin, StandinThread]
) -> None:
    """Huge names are cut with "…" and the payload stays within Apple's limit."""
    long = message(tenant="t" * 3800, app_name="Ä" * 5000, location="📍" * 5000)
    result = await provider.send(long)
    assert result.outcome is SendOutcome.DELIVERED
    (seen,) = standin[0].received.all()
    assert seen.body_size <= MAX_PAYLOAD_BYTES
    assert seen.payload["aps"]["alert"]["body"].endswith("…")
    assert seen.payload["tenant"] == "t" * 3800


async def test_fifty_concurrent_sends_all_arrive_over_one_client(
    provider: ApnsProvider, standin: tuple[ApnsStandin, StandinThread]
) -> None:
    """Fifty parallel sends are delivered over the provider's pooled connections."""
    messages = [message(token=f"{i:064x}", challenge_id=f"ch_{i}") for i in range(50)]
    results = await asyncio.gather(*(provider.send(m) for m in messages))
    assert {r.outcome for r in results} == {SendOutcome.DELIVERED}
    assert len({r.headers["apns-id"] for r in standin[0].received.all()}) == 50
    again = await asyncio.gather(*(provider.send(m) for m in messages))
    assert {r.outcome for r in again} == {SendOutcome.DELIVERED}
    connections = {r.connection_id for r in standin[0].received.all()}
    assert len(connections) <= 10  # the one client's pool, not a connection per message


async def test_ended_follow_up_replaces_the_prompt_under_the_same_collapse_id(
    provider: ApnsProvider, standin: tuple[ApnsStandin, StandinThread]
) -> None:
    """The 'ended' push reuses the challenge's collapse id and swaps the alert text."""
    await provider.send(message())
    result = await provider.send(message(kind="ended", status="approved"))
    assert result.outcome is SendOutcome.DELIVERED
    prompt, ended = standin[0].received.all()
    assert ended.headers["apns-collapse-id"] == prompt.headers["apns-collapse-id"] == "ch_4a1b"
    assert ended.payload["aps"] == {
        "alert": {"title": "Sign-in approved", "body": "VPN · Berlin, DE"}
    }
    assert ended.payload["status"] == "approved"


async def test_control_api_injects_faults_from_another_client(
    provider: ApnsProvider, standin: tuple[ApnsStandin, StandinThread]
) -> None:
    """Faults set over the JSON control API (HTTP/2 + TLS) apply to the next push."""
    thread = standin[1]
    context = thread.tls.client_context(alpn=("h2", "http/1.1"))
    async with httpx.AsyncClient(http2=True, verify=context, base_url=thread.url) as client:
        plan = {"next": [{"status": 503, "reason": "Shutdown"}]}
        configured = await client.post("/_standin/faults", json=plan)
        assert configured.status_code == 200
        result = await provider.send(message())
        received = (await client.get("/_standin/received")).json()["received"]
        summary = (await client.get("/_standin/summary")).json()
        cleared = await client.delete("/_standin/received")
    assert (result.outcome, result.reason) == (SendOutcome.RETRY, "Shutdown")
    assert [r["status"] for r in received] == [503]
    assert summary == {"total": 1, "by_status": {"503": 1}, "in_progress": 0}
    assert cleared.status_code == 204
    assert standin[0].received.all() == []


def test_standin_cli_prints_its_port_and_credentials(tmp_path: Path) -> None:
    """`python -m pusher.standins apns` serves and prints what a client needs, as JSON."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pusher.standins", "apns", "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        key = ApnsKey(Path(info["key_file"]).read_text(), info["key_id"], info["team_id"])

        async def push() -> SendOutcome:
            provider = ApnsProvider(
                key=key.pem,
                key_id=key.key_id,
                team_id=key.team_id,
                topic=TOPIC,
                endpoint=info["url"],
                ca_file=info["ca_file"],
            )
            await provider.start()
            try:
                return (await provider.send(message())).outcome
            finally:
                await provider.close()

        assert asyncio.run(push()) is SendOutcome.DELIVERED
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0
