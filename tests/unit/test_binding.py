"""Properties of the decision binding digest (SPEC §3)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from approvals.binding import DECISIONS, decision_challenge

nonces = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="|"))
decisions = st.sampled_from(DECISIONS)
numbers = st.one_of(st.none(), st.text(st.characters(exclude_categories=["Cs"])))


@given(nonce=nonces, decision=decisions, number=numbers)
def test_digest_matches_spec_formula(nonce: str, decision: str, number: str | None) -> None:
    """The digest is SHA-256 of the SPEC's pipe-joined string."""
    expected = hashlib.sha256(
        ("pushgate/v1|" + nonce + "|" + decision + "|" + (number or "")).encode()
    ).digest()
    assert decision_challenge(nonce, decision, number) == expected


@given(
    a=st.tuples(nonces, decisions, numbers),
    b=st.tuples(nonces, decisions, numbers),
)
def test_any_change_of_nonce_decision_or_number_changes_digest(
    a: tuple[str, str, str | None], b: tuple[str, str, str | None]
) -> None:
    """Two inputs share a digest only when nonce, decision and number (None as "") agree."""
    same = a[0] == b[0] and a[1] == b[1] and (a[2] or "") == (b[2] or "")
    assert (decision_challenge(*a) == decision_challenge(*b)) == same


@given(nonce=nonces, number=numbers)
def test_each_decision_binds_a_distinct_digest(nonce: str, number: str | None) -> None:
    """Approve, deny and fraud over the same nonce and number never share a digest."""
    digests = {decision_challenge(nonce, d, number) for d in DECISIONS}
    assert len(digests) == len(DECISIONS)


def test_missing_number_binds_like_empty_number() -> None:
    """A missing number binds the same digest as an empty one, as the SPEC formula says."""
    assert decision_challenge("n", "deny", None) == decision_challenge("n", "deny", "")


def test_unknown_decision_is_rejected() -> None:
    """A decision outside approve/deny/fraud raises instead of binding a digest."""
    with pytest.raises(ValueError, match="unknown decision"):
        decision_challenge("n", "maybe", None)


def test_nonce_with_separator_is_rejected() -> None:
    """A nonce containing the separator raises, keeping the encoding unambiguous."""
    with pytest.raises(ValueError, match="nonce"):
        decision_challenge("a|b", "approve", None)
