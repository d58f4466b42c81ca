"""Text rules and payload shapes shared by the APNs and FCM providers (SPEC §8)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pusher.payloads import (
    ELLIPSIS,
    MAX_APP_NAME_CHARS,
    MAX_PAYLOAD_BYTES,
    apns_payload,
    apns_size,
    clean,
    fcm_fields,
    fcm_size,
    retry_after_seconds,
    shrink_to,
    truncate,
)
from pusher.providers.base import PushMessage


def message(**changes: Any) -> PushMessage:
    base = PushMessage(
        kind="challenge",
        device_id="dev_1",
        platform="apns",
        token="ab" * 32,
        topic="com.example.pushgate",
        challenge_id="ch_7f3a",
        tenant="acme",
        app_name="VPN",
        location="Berlin, DE",
        expires_at=1_800_000_060,
        now=1_800_000_000,
    )
    return dataclasses.replace(base, **changes)


def test_challenge_apns_payload_matches_spec() -> None:
    """A challenge carries the spec's alert, sound, category and custom keys, nothing else."""
    assert apns_payload(message()) == {
        "aps": {
            "alert": {"title": "Sign-in request", "body": "VPN · Berlin, DE"},
            "sound": "default",
            "category": "PUSHGATE_CHALLENGE",
        },
        "challenge_id": "ch_7f3a",
        "tenant": "acme",
    }


@pytest.mark.parametrize(
    ("status", "title"),
    [
        ("approved", "Sign-in approved"),
        ("denied", "Sign-in denied"),
        ("fraud", "Sign-in reported"),
        ("expired", "Sign-in request expired"),
        ("cancelled", "Sign-in request cancelled"),
        ("something-new", "Sign-in request answered"),
    ],
)
def test_ended_apns_payload_is_silent_and_names_the_outcome(status: str, title: str) -> None:
    """The follow-up has no sound or actions, says how it ended and carries the status."""
    payload = apns_payload(message(kind="ended", status=status))
    assert payload == {
        "aps": {"alert": {"title": title, "body": "VPN · Berlin, DE"}},
        "challenge_id": "ch_7f3a",
        "tenant": "acme",
        "status": status,
    }


def test_fcm_fields_match_spec() -> None:
    """FCM gets the same text, string data, high priority, ttl = seconds left, collapse key."""
    fields = fcm_fields(message())
    assert (fields.title, fields.body) == ("Sign-in request", "VPN · Berlin, DE")
    assert fields.data == {
        "challenge_id": "ch_7f3a",
        "tenant": "acme",
        "app_name": "VPN",
        "location": "Berlin, DE",
        "expires_at": "1800000060",
    }
    assert (fields.ttl, fields.collapse_key, fields.priority) == (60, "ch_7f3a", "high")


def test_fcm_ended_fields_add_status() -> None:
    """The FCM follow-up keeps the collapse key and adds the final status to the data."""
    fields = fcm_fields(message(kind="ended", status="denied"))
    assert fields.title == "Sign-in denied"
    assert fields.data["status"] == "denied"
    assert fields.collapse_key == "ch_7f3a"


def test_fcm_ttl_is_at_least_one_second() -> None:
    """A challenge at or past its expiry still gets a positive ttl."""
    assert fcm_fields(message(now=1_800_000_100)).ttl == 1


def test_body_without_location_is_just_the_app_name() -> None:
    """No dangling separator when the location is unknown."""
    assert apns_payload(message(location=" "))["aps"]["alert"]["body"] == "VPN"


def test_control_characters_and_newlines_become_single_spaces() -> None:
    """Names from outside cannot break the notification into several lines."""
    assert clean(" Pay\n\nroll\t\x00 app ") == "Pay roll app"


def test_long_app_name_is_cut_to_a_readable_length_with_ellipsis() -> None:
    """A 500-character app name is shown as its first characters plus "…"."""
    body = apns_payload(message(app_name="A" * 500))["aps"]["alert"]["body"]
    app_part = body.split(" · ")[0]
    assert len(app_part) == MAX_APP_NAME_CHARS
    assert app_part.endswith(ELLIPSIS)


def test_huge_identifiers_force_byte_level_truncation_within_4096() -> None:
    """A tenant eating most of the budget still leaves a payload <= 4096 bytes."""
    msg = message(tenant="t" * 3900, app_name="é" * 70, location="😀" * 100)
    payload = apns_payload(msg)
    assert apns_size(payload) <= MAX_PAYLOAD_BYTES
    assert payload["tenant"] == "t" * 3900
    assert payload["aps"]["alert"]["body"].endswith(ELLIPSIS)


def test_identifiers_that_cannot_fit_are_refused() -> None:
    """Only ids larger than the whole limit raise; text fields never cause a rejection."""
    with pytest.raises(ValueError, match="exceed"):
        apns_payload(message(challenge_id="c" * 5000))


@given(
    app_name=st.text(max_size=3000),
    location=st.text(max_size=3000),
    tenant=st.text(min_size=1, max_size=500),
)
def test_any_text_fits_both_providers_limits(app_name: str, location: str, tenant: str) -> None:
    """Whatever the names, both payloads fit 4096 bytes and keep a prefix of the name."""
    msg = message(app_name=app_name, location=location, tenant=tenant)
    payload = apns_payload(msg)
    assert apns_size(payload) <= MAX_PAYLOAD_BYTES
    fields = fcm_fields(msg)
    assert fcm_size(fields) <= MAX_PAYLOAD_BYTES
    shown = fields.data["app_name"].removesuffix(ELLIPSIS)
    assert clean(app_name).startswith(shown.rstrip())


def test_truncate_and_shrink_keep_short_text_unchanged() -> None:
    """Cutting only happens when needed."""
    assert truncate("short", 10) == "short"
    assert shrink_to("short", 5) == "short"
    assert shrink_to("abcdef", 4) == "a" + ELLIPSIS


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("30", 30.0),
        (" 7 ", 7.0),
        ("Thu, 01 Jan 2027 00:00:10 GMT", 10.0),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_accepts_seconds_and_http_dates(
    header: str | None, seconds: float | None
) -> None:
    """Retry-After is read as delta seconds or as an HTTP date relative to now."""
    assert retry_after_seconds(header, now=1_798_761_600.0) == seconds
