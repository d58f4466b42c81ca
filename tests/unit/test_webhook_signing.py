"""Webhook signatures, retry backoff and the public event shape (SPEC §9). Pure."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

import approvals.store
from approvals.events import EVENT_TYPES, Progress, event_item
from pusher.webhooks import BASE_DELAY_SECONDS, MAX_DELAY_SECONDS, backoff_seconds, signature

SCRIPTS = Path(approvals.store.__file__).parent / "scripts"


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    """The header is t=<ts>,v1=<hex HMAC-SHA256(secret, "<ts>." + body)>."""
    body = b'{"id":"1-0","type":"user.locked"}'
    expected = hmac.new(b"whsec_k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("whsec_k", 1700000000, body) == f"t=1700000000,v1={expected}"


@given(attempt=st.integers(1, 60), rand=st.floats(0.0, 1.0))
def test_backoff_grows_exponentially_within_jitter_and_is_capped(attempt: int, rand: float) -> None:
    """Attempt n waits between half and all of min(2 s * 2^(n-1), 1 h)."""
    ceiling = min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2.0 ** (attempt - 1))
    delay = backoff_seconds(attempt, lambda: rand)
    assert ceiling / 2 <= delay <= ceiling


def test_event_item_has_the_public_shape() -> None:
    """Empty optional ids are left out, the time is RFC 3339 and data is parsed JSON."""
    fields = {
        "type": "totp.failed",
        "tenant": "tn_1",
        "user_id": "alice",
        "challenge_id": "",
        "device_id": "dv0001abc",
        "at": "1700000000000",
        "data": '{"reason": "invalid"}',
    }
    assert event_item("1700000000000-0", fields) == {
        "id": "1700000000000-0",
        "type": "totp.failed",
        "at": "2023-11-14T22:13:20.000Z",
        "tenant": "tn_1",
        "user_id": "alice",
        "device_id": "dv0001abc",
        "data": {"reason": "invalid"},
    }


def test_event_types_are_the_spec_list() -> None:
    """The §9 list: 9 challenge, 3 device, 6 totp, 2 user and 2 enrollment types."""
    prefixes = [t.split(".")[0] for t in EVENT_TYPES]
    assert {p: prefixes.count(p) for p in set(prefixes)} == {
        "challenge": 9,
        "device": 3,
        "totp": 6,
        "user": 2,
        "enrollment": 2,
    }


def test_progress_facts_append_spec_events_and_match_the_delivery_scripts() -> None:
    """Every progress fact's event is a §9 type, and the delivery scripts record ``sent_at``
    with the same field, message and event as ``Progress.SENT``."""
    assert {p.event for p in Progress if p.event} <= set(EVENT_TYPES)
    sent = Progress.SENT
    for script in ("delivery_begin.lua", "delivery_settle.lua"):
        text = (SCRIPTS / script).read_text()
        assert f"field = '{sent.field}'" in text
        assert f"message = '{sent.message}'" in text
        assert f"event_type = '{sent.event}'" in text
