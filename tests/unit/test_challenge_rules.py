"""Pure challenge rules: the state machine, expiry reading, answers and views."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from approvals.challenge import (
    PENDING,
    STATUSES,
    TERMINAL,
    can_transition,
    device_message,
    device_view,
    effective_status,
    outcome_for_answer,
    portal_view,
)
from approvals.ids import new_challenge_id, shard_for, shard_of
from approvals.numbers import new_number, number_matches
from approvals.records import ChallengeRecord

statuses = st.sampled_from(sorted(STATUSES))


@given(statuses, statuses)
def test_only_pending_moves_and_only_to_a_terminal_state(current: str, target: str) -> None:
    """Terminal states never change; pending moves only to a terminal state."""
    allowed = can_transition(current, target)
    assert allowed == (current == PENDING and target in TERMINAL)


@given(st.integers(0, 10**13), st.integers(0, 10**13))
def test_pending_reads_expired_exactly_from_the_deadline(expires_at: int, now: int) -> None:
    """A pending record reads expired when now >= expires_at, even if no timer fired."""
    record = ChallengeRecord(id="x", status="pending", expires_at_ms=expires_at)
    assert effective_status(record, now) == ("expired" if now >= expires_at else "pending")


@given(st.sampled_from(sorted(TERMINAL)), st.integers(0, 10**13))
def test_ended_records_keep_their_status_forever(status: str, now: int) -> None:
    """An ended challenge reads the same at any later time."""
    assert effective_status(ChallengeRecord(id="x", status=status), now) == status


@given(st.booleans())
def test_answers_map_to_final_states(number_ok: bool) -> None:
    """approve needs the number; deny and fraud end with their reasons."""
    assert outcome_for_answer("approve", number_ok) == (
        ("approved", None) if number_ok else ("denied", "number_mismatch")
    )
    assert outcome_for_answer("deny", number_ok) == ("denied", "user_denied")
    assert outcome_for_answer("fraud", number_ok) == ("fraud", "fraud_reported")


@given(st.sampled_from([2, 3]))
def test_numbers_have_exactly_the_policy_digits(digits: int) -> None:
    """Numbers have the policy's digit count and no leading zero."""
    number = new_number(digits)
    assert len(number) == digits
    assert number[0] != "0"
    assert number_matches(number, number)
    assert not number_matches(number, None)


@given(st.text(max_size=10))
def test_number_match_needs_the_exact_string(typed: str) -> None:
    """Only the identical string matches (no trimming, no int parsing)."""
    assert number_matches("47", typed) == (typed == "47")


@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20), st.integers(1, 4096))
def test_challenge_ids_encode_the_users_shard(tenant: str, user: str, shards: int) -> None:
    """Any replica finds a challenge's shard from its id alone."""
    shard = shard_for(tenant, user, shards)
    assert 0 <= shard < shards
    assert shard_of(new_challenge_id(shard), shards) == shard


def test_device_view_never_contains_the_number() -> None:
    """The device sees app, context and nonce; the number stays with the portal."""
    record = ChallengeRecord.from_hash({
        "id": "ch0001abc", "status": "pending", "expires_at": "2000", "created_at": "1000",
        "number": "47", "nm": "1", "nonce": "n", "app_name": "Salesforce",
        "ctx": '{"location": "Berlin, DE"}',
    })  # fmt: skip
    assert "47" not in str(device_view(record))
    assert portal_view(record, 1500)["number"] == "47"
    assert portal_view(record, 2500)["status"] == "expired"
    assert portal_view(record, 2500)["reason"] == "ttl"


def test_views_read_a_records_hash_fields_as_the_record_itself() -> None:
    """A view given the hash fields answers as for the typed record read from them."""
    fields = {
        "id": "ch0001abc", "tenant": "acme", "user_id": "alice", "resource": "vpn",
        "app_name": "VPN", "ctx": '{"location": "Berlin, DE"}', "nm": "1", "number": "47",
        "nonce": "n0", "status": "pending", "created_at": "1000", "expires_at": "2000",
        "devices": "2", "seen_at": "1200",
    }  # fmt: skip
    record = ChallengeRecord.from_hash(fields)
    assert (record.number_matching, record.devices, record.seen_at_ms) == (True, 2, 1200)
    assert record.context == {"location": "Berlin, DE"}
    for now in (1500, 2500):
        assert portal_view(fields, now) == portal_view(record, now)
        assert effective_status(fields, now) == effective_status(record, now)
    assert device_view(fields) == device_view(record)


def test_in_app_record_message_goes_out_as_the_device_view() -> None:
    """A new challenge published as record fields reaches the app as its device view, no number."""
    record = {
        "id": "ch0001abc",
        "app_name": "VPN",
        "ctx": '{"location": "Berlin, DE"}',
        "created_at": "1700000000000",
        "expires_at": "1700000060000",
        "nm": "1",
        "nonce": "n0",
    }
    sent = json.loads(device_message(json.dumps({"type": "challenge", "record": record})))
    assert sent == {
        "type": "challenge",
        "challenge": device_view(ChallengeRecord.from_hash(record)),
    }
    assert sent["challenge"]["context"] == {"location": "Berlin, DE"}
    assert "number" not in sent["challenge"]


def test_other_in_app_messages_pass_unchanged() -> None:
    """An ``ended`` notice is relayed exactly as published."""
    ended = '{"type":"ended","id":"ch0001abc","status":"approved"}'
    assert device_message(ended) == ended
