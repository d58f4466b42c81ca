"""FcmProvider (real firebase-admin, httpx HTTP/2, google-auth) against the local FCM stand-in."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from pusher.payloads import MAX_PAYLOAD_BYTES
from pusher.providers.base import PushMessage, SendOutcome
from pusher.providers.fcm import FcmProvider
from pusher.standins.credentials import ServiceAccount, make_service_account
from pusher.standins.fcm import FcmStandin
from pusher.standins.runner import StandinThread
from pusher.standins.tls import TlsMaterial, make_tls
from tests.integration.standins import until_nothing_in_progress

PROJECT = "pushgate-test"
TOKEN = "fcm-token:APA91b" + "x" * 40
EXPIRES_AT = 4_102_444_800


def message(**changes: Any) -> PushMessage:
    base = PushMessage(
        kind="challenge",
        device_id="dev_2",
        platform="fcm",
        token=TOKEN,
        topic="",
        challenge_id="ch_9c2e",
        tenant="acme",
        app_name="VPN",
        location="Berlin, DE",
        expires_at=EXPIRES_AT,
        now=EXPIRES_AT - 90,
    )
    return dataclasses.replace(base, **changes)


@dataclasses.dataclass
class Fcm:
    standin: FcmStandin
    thread: StandinThread
    account: ServiceAccount


def start_fcm(tls: TlsMaterial, directory: Path) -> Fcm:
    standin = FcmStandin()
    thread = StandinThread(standin, tls)
    thread.start()
    account = make_service_account(
        directory / "service-account.json", token_uri=f"{thread.url}/token", project_id=PROJECT
    )
    standin.trust(account)
    return Fcm(standin, thread, account)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls(tmp_path_factory.mktemp("fcm-tls"))


@pytest.fixture(scope="module")
def running(tls: TlsMaterial, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fcm]:
    fcm = start_fcm(tls, tmp_path_factory.mktemp("fcm"))
    yield fcm
    fcm.thread.stop()


@pytest.fixture
def fcm(running: Fcm) -> Fcm:
    """The module's stand-in with no faults, no record and default token lifetime."""
    running.standin.faults.reset()
    running.standin.received.clear()
    running.standin.token_lifetime = 3600
    return running


def make_provider(fcm: Fcm, *, timeout: float = 5.0) -> FcmProvider:
    return FcmProvider(
        service_account_file=fcm.account.path,
        endpoint=fcm.thread.url,
        ca_file=fcm.thread.tls.ca_file,
        timeout=timeout,
    )


@pytest.fixture
async def provider(fcm: Fcm) -> AsyncIterator[FcmProvider]:
    fcm_provider = make_provider(fcm)
    await fcm_provider.start()
    yield fcm_provider
    await fcm_provider.close()


async def test_challenge_reaches_fcm_with_googles_message_fields(
    provider: FcmProvider, fcm: Fcm
) -> None:
    """Google receives token, data, notification and android high priority, ttl, collapse key."""
    result = await provider.send(message())
    assert result.outcome is SendOutcome.DELIVERED
    assert result.provider_id is not None
    assert result.provider_id.startswith(f"projects/{PROJECT}/messages/")
    (seen,) = fcm.standin.received.all()
    assert seen.path == f"/v1/projects/{PROJECT}/messages:send"
    assert seen.http_version == "2"
    assert seen.headers["authorization"].startswith("Bearer ya29.")
    assert seen.headers["x-goog-api-format-version"] == "2"
    assert seen.payload == {
        "message": {
            "token": TOKEN,
            "data": {
                "challenge_id": "ch_9c2e",
                "tenant": "acme",
                "app_name": "VPN",
                "location": "Berlin, DE",
                "expires_at": str(EXPIRES_AT),
            },
            "notification": {"title": "Sign-in request", "body": "VPN · Berlin, DE"},
            "android": {
                "priority": "high",
                "ttl": "90s",
                "collapse_key": "ch_9c2e",
                "notification": {"tag": "ch_9c2e"},
            },
        }
    }


async def test_fid_target_sends_the_token_as_fid(fcm: Fcm) -> None:
    """With target_field='fid' the device id goes out in the v1 ``fid`` field."""
    provider = FcmProvider(
        service_account_file=fcm.account.path,
        endpoint=fcm.thread.url,
        ca_file=fcm.thread.tls.ca_file,
        target_field="fid",
    )
    await provider.start()
    try:
        result = await provider.send(message())
    finally:
        await provider.close()
    assert result.outcome is SendOutcome.DELIVERED
    (seen,) = fcm.standin.received.all()
    assert seen.payload["message"]["fid"] == TOKEN
    assert "token" not in seen.payload["message"]


async def test_one_access_token_serves_many_sends(provider: FcmProvider, fcm: Fcm) -> None:
    """The OAuth token from the verified service-account assertion is reused, not refetched."""
    before = fcm.standin.tokens_issued
    for _ in range(3):
        assert (await provider.send(message())).outcome is SendOutcome.DELIVERED
    assert fcm.standin.tokens_issued == before
    assert len({r.headers["authorization"] for r in fcm.standin.received.all()}) == 1


async def test_token_close_to_expiry_is_refreshed_before_sending(fcm: Fcm) -> None:
    """A token with less than the refresh margin left is renewed ahead, never rejected with 401."""
    # Inside the provider's 5-minute refresh-ahead margin, outside google-auth's 3m45s one.
    fcm.standin.token_lifetime = 280
    provider = make_provider(fcm)
    await provider.start()
    try:
        first = await provider.send(message())
        second = await provider.send(message())
    finally:
        await provider.close()
    assert (first.outcome, second.outcome) == (SendOutcome.DELIVERED, SendOutcome.DELIVERED)
    auths = [r.headers["authorization"] for r in fcm.standin.received.all()]
    assert auths[0] != auths[1]
    assert {r.status for r in fcm.standin.received.all()} == {200}


async def test_untrusted_service_account_cannot_get_a_token(fcm: Fcm, tmp_path: Path) -> None:
    """An assertion signed by an unknown key gets invalid_grant: FAILED, nothing sent."""
    stranger = make_service_account(
        tmp_path / "stranger.json", token_uri=f"{fcm.thread.url}/token", project_id=PROJECT
    )
    provider = FcmProvider(
        service_account_file=stranger.path,
        endpoint=fcm.thread.url,
        ca_file=fcm.thread.tls.ca_file,
    )
    await provider.start()
    try:
        result = await provider.send(message())
    finally:
        await provider.close()
    assert result.outcome is SendOutcome.FAILED
    assert result.reason is not None
    assert "RefreshError" in result.reason
    assert fcm.standin.received.all() == []


async def test_unregistered_token_marks_the_token_invalid(provider: FcmProvider, fcm: Fcm) -> None:
    """404 UNREGISTERED means the app instance is gone."""
    fcm.standin.faults.add_invalid_tokens(TOKEN)
    result = await provider.send(message())
    assert (result.outcome, result.status, result.reason) == (
        SendOutcome.INVALID_TOKEN,
        404,
        "UNREGISTERED",
    )


async def test_malformed_token_invalid_argument_marks_the_token_invalid(
    provider: FcmProvider,
) -> None:
    """INVALID_ARGUMENT naming message.token is a dead token, not a bad message."""
    result = await provider.send(message(token="not a token!"))
    assert (result.outcome, result.status, result.reason) == (
        SendOutcome.INVALID_TOKEN,
        400,
        "INVALID_ARGUMENT",
    )


async def test_invalid_argument_about_the_message_fails_without_retry(
    provider: FcmProvider, fcm: Fcm
) -> None:
    """INVALID_ARGUMENT that is not about the token is permanent for this message only."""
    fcm.standin.faults.fail_next(400, "INVALID_ARGUMENT")
    result = await provider.send(message())
    assert (result.outcome, result.status) == (SendOutcome.FAILED, 400)


async def test_sender_id_mismatch_marks_the_token_invalid(provider: FcmProvider, fcm: Fcm) -> None:
    """A token registered to another sender will never work for this project."""
    fcm.standin.faults.fail_next(403, "SENDER_ID_MISMATCH")
    result = await provider.send(message())
    assert (result.outcome, result.reason) == (SendOutcome.INVALID_TOKEN, "SENDER_ID_MISMATCH")


async def test_quota_exceeded_is_retried_with_retry_after(provider: FcmProvider, fcm: Fcm) -> None:
    """429 QUOTA_EXCEEDED comes back at once as RETRY carrying Google's Retry-After."""
    fcm.standin.faults.fail_next(429, "QUOTA_EXCEEDED", retry_after=30)
    result = await provider.send(message())
    assert (result.outcome, result.status, result.reason) == (
        SendOutcome.RETRY,
        429,
        "QUOTA_EXCEEDED",
    )
    assert result.retry_after == 30.0
    assert len(fcm.standin.received.all()) == 1


async def test_unavailability_is_one_attempt_the_library_does_not_resend(
    provider: FcmProvider, fcm: Fcm
) -> None:
    """A 503 comes back at once as RETRY: firebase-admin's own re-sends are turned off."""
    fcm.standin.faults.fail_next(503, "UNAVAILABLE")
    result = await provider.send(message())
    assert (result.outcome, result.status) == (SendOutcome.RETRY, 503)
    assert [r.status for r in fcm.standin.received.all()] == [503]
    assert (await provider.send(message())).outcome is SendOutcome.DELIVERED


async def test_persistent_server_error_costs_one_request_per_send(fcm: Fcm) -> None:
    """A lasting 500 is one request per send, reported as RETRY; the caller owns retrying."""
    fcm.standin.faults.fail_token(TOKEN, 500, "INTERNAL")
    provider = make_provider(fcm)
    await provider.start()
    try:
        results = [await provider.send(message()) for _ in range(2)]
    finally:
        await provider.close()
    assert {(r.outcome, r.status, r.reason) for r in results} == {
        (SendOutcome.RETRY, 500, "INTERNAL")
    }
    assert [r.status for r in fcm.standin.received.all()] == [500, 500]


async def test_unanswered_request_is_retried_after_the_timeout(fcm: Fcm) -> None:
    """A send FCM never answers is cut by the provider's timeout and reported as RETRY."""
    fcm.standin.faults.hang_next()
    provider = make_provider(fcm, timeout=0.5)
    await provider.start()
    try:
        result = await provider.send(message())
    finally:
        await provider.close()
    assert (result.outcome, result.reason) == (SendOutcome.RETRY, "timeout")
    (seen,) = fcm.standin.received.all()
    assert seen.status is None


async def test_abandoned_request_is_never_accepted(provider: FcmProvider, fcm: Fcm) -> None:
    """A send cut by its limit drops its connection: FCM never accepts that prompt later."""
    fcm.standin.faults.set_latency(2.0)
    result = await provider.send(message(), limit=0.3)
    assert (result.outcome, result.reason) == (SendOutcome.RETRY, "timeout")
    await until_nothing_in_progress(fcm.standin.received)
    assert fcm.standin.received.all() == []
    fcm.standin.faults.set_latency(0)
    assert (await provider.send(message())).outcome is SendOutcome.DELIVERED


async def test_rejected_access_token_is_renewed_through_the_custom_ca(
    fcm: Fcm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 401 on the cached token renews it over the configured CA; the next send is delivered."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    provider = make_provider(fcm)
    await provider.start()
    try:
        first = await provider.send(message())
        fcm.standin.revoke_access_tokens()
        issued = fcm.standin.tokens_issued
        rejected = await provider.send(message())
        again = await provider.send(message())
    finally:
        await provider.close()
    assert first.outcome is SendOutcome.DELIVERED
    assert (rejected.outcome, rejected.status) == (SendOutcome.RETRY, 401)
    assert again.outcome is SendOutcome.DELIVERED
    assert fcm.standin.tokens_issued == issued + 1
    assert [r.status for r in fcm.standin.received.all()] == [200, 401, 200]


async def test_long_fields_are_truncated_to_fit_the_message_limit(
    provider: FcmProvider, fcm: Fcm
) -> None:
    """Huge names are cut with "…" so data plus notification stay within 4096 bytes."""
    long = message(tenant="t" * 3000, app_name="Ä" * 5000, location="📍" * 5000)
    result = await provider.send(long)
    assert result.outcome is SendOutcome.DELIVERED
    (seen,) = fcm.standin.received.all()
    sent = seen.payload["message"]
    assert sent["data"]["app_name"].endswith("…")
    size = sum(len(k.encode()) + len(v.encode()) for k, v in sent["data"].items())
    size += sum(len(v.encode()) for v in sent["notification"].values())
    assert size <= MAX_PAYLOAD_BYTES


async def test_fifty_concurrent_sends_all_arrive_over_one_app(
    provider: FcmProvider, fcm: Fcm
) -> None:
    """Fifty parallel sends share one firebase app, one access token and few connections."""
    before = fcm.standin.tokens_issued
    messages = [message(token=f"{TOKEN}{i}", challenge_id=f"ch_{i}") for i in range(50)]
    results = await asyncio.gather(*(provider.send(m) for m in messages))
    assert {r.outcome for r in results} == {SendOutcome.DELIVERED}
    seen = fcm.standin.received.all()
    assert len({r.token for r in seen}) == 50
    assert fcm.standin.tokens_issued == before
    assert len({r.connection_id for r in seen}) <= 2


async def test_ended_follow_up_reuses_collapse_key_and_notification_tag(
    provider: FcmProvider, fcm: Fcm
) -> None:
    """The 'ended' message collapses onto the prompt and replaces its notification."""
    await provider.send(message())
    await provider.send(message(kind="ended", status="denied"))
    prompt, ended = (r.payload["message"] for r in fcm.standin.received.all())
    assert ended["android"]["collapse_key"] == prompt["android"]["collapse_key"] == "ch_9c2e"
    assert ended["android"]["notification"]["tag"] == "ch_9c2e"
    assert ended["notification"]["title"] == "Sign-in denied"
    assert ended["data"]["status"] == "denied"


async def test_two_providers_keep_their_own_endpoints(
    fcm: Fcm, tls: TlsMaterial, tmp_path: Path
) -> None:
    """Each provider's endpoint override is its own: two apps, two stand-ins, no crossing."""
    other = start_fcm(tls, tmp_path)
    first, second = make_provider(fcm), make_provider(other)
    try:
        await first.start()
        await second.start()
        results = await asyncio.gather(
            first.send(message(challenge_id="ch_first")),
            second.send(message(challenge_id="ch_second")),
        )
    finally:
        await first.close()
        await second.close()
        other.thread.stop()
    assert {r.outcome for r in results} == {SendOutcome.DELIVERED}
    assert [
        r.payload["message"]["android"]["collapse_key"] for r in fcm.standin.received.all()
    ] == ["ch_first"]
    assert [
        r.payload["message"]["android"]["collapse_key"] for r in other.standin.received.all()
    ] == ["ch_second"]


async def test_standin_serves_http1_clients_as_well(fcm: Fcm) -> None:
    """The token grant and a send also work over HTTP/1.1, as requests-based clients use it."""
    now = int(time.time())
    assertion = jwt.encode(
        {
            "iss": fcm.account.client_email,
            "scope": "https://www.googleapis.com/auth/firebase.messaging",
            "aud": f"{fcm.thread.url}/token",
            "iat": now,
            "exp": now + 3600,
        },
        fcm.account.info["private_key"],
        algorithm="RS256",
    )
    context = fcm.thread.tls.client_context(alpn=("http/1.1",))
    async with httpx.AsyncClient(verify=context, base_url=fcm.thread.url) as client:
        grant = await client.post(
            "/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": assertion,
            },
        )
        assert grant.status_code == 200
        assert grant.json()["token_type"] == "Bearer"
        sent = await client.post(
            f"/v1/projects/{PROJECT}/messages:send",
            headers={"authorization": f"Bearer {grant.json()['access_token']}"},
            json={"message": {"token": TOKEN, "data": {"challenge_id": "ch_h1"}}},
        )
    assert sent.status_code == 200
    (seen,) = fcm.standin.received.all()
    assert (seen.http_version, seen.status) == ("1.1", 200)
