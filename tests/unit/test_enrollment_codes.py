"""Push enrollment codes (SPEC §4): shape, shard routing, stored digest, enroll link."""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from approvals.enrollment import (
    ENROLLMENT_CODE_TTL_SECONDS,
    code_digest,
    enroll_url,
    new_enrollment_code,
    shard_of_code,
)

shards = st.integers(min_value=0, max_value=0xFFFF)
VALID = new_enrollment_code(7)


def test_codes_live_ten_minutes() -> None:
    """An enrollment code's lifetime is 600 seconds."""
    assert ENROLLMENT_CODE_TTL_SECONDS == 600


@given(shard=shards)
def test_code_carries_its_shard(shard: int) -> None:
    """A code starts with "en" and four lowercase hex digits of its shard, which parse back."""
    code = new_enrollment_code(shard)
    assert code.startswith(f"en{shard:04x}")
    assert shard_of_code(code) == shard


def test_code_has_192_random_url_safe_bits() -> None:
    """After the prefix come 32 base64url characters (192 bits), fresh for every code."""
    codes = {new_enrollment_code(3) for _ in range(50)}
    assert len(codes) == 50
    for code in codes:
        assert re.fullmatch(r"en0003[A-Za-z0-9_-]{32}", code)


@given(shard=shards)
def test_code_is_url_safe_and_has_no_dot(shard: int) -> None:
    """A code needs no percent-encoding and never contains '.'."""
    code = new_enrollment_code(shard)
    assert "." not in code
    assert quote(code, safe="") == code


@pytest.mark.parametrize("shard", [-1, 0x10000])
def test_out_of_range_shard_is_refused(shard: int) -> None:
    """A shard that does not fit four hex digits is a programming error."""
    with pytest.raises(ValueError, match="shard"):
        new_enrollment_code(shard)


@pytest.mark.parametrize(
    "bad",
    [
        None,
        123,
        b"en0007" + b"A" * 32,
        "",
        "en",
        VALID[:-1],
        VALID + "A",
        "EN" + VALID[2:],
        "en000A" + VALID[6:],
        "ch" + VALID[2:],
        VALID[:-1] + ".",
        VALID[:-1] + "=",
        VALID[:-1] + "é",
        " " + VALID[:-1],
        VALID[:-1] + "\n",
        "en0007" + "A" * 10_000,
    ],
)
def test_malformed_codes_have_no_shard(bad: object) -> None:
    """Anything but the exact code shape gives None."""
    assert shard_of_code(bad) is None


@given(st.one_of(st.text(), st.binary(), st.integers(), st.none(), st.floats()))
def test_shard_of_code_never_raises(candidate: object) -> None:
    """shard_of_code answers None or a shard for any input, and never raises."""
    result = shard_of_code(candidate)
    assert result is None or 0 <= result <= 0xFFFF


def test_shard_beyond_configured_count_is_refused() -> None:
    """With the shard count given, a code naming a higher shard gives None."""
    code = new_enrollment_code(16)
    assert shard_of_code(code, shards=17) == 16
    assert shard_of_code(code, shards=16) is None


def test_digest_is_sha256_hex_of_the_code() -> None:
    """What is stored is the SHA-256 hex digest of the code, not the code."""
    assert code_digest(VALID) == hashlib.sha256(VALID.encode()).hexdigest()
    assert VALID not in code_digest(VALID)
    assert code_digest(VALID) != code_digest(new_enrollment_code(7))


@given(
    server=st.text(st.characters(exclude_categories=["Cs"]), min_size=1),
    shard=shards,
)
def test_enroll_url_round_trips_server_and_code(server: str, shard: int) -> None:
    """The pushgate://enroll link carries server and code percent-encoded and parses back."""
    code = new_enrollment_code(shard)
    url = enroll_url(server, code)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("pushgate", "enroll", "")
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=True)
    assert query == {"server": [server], "code": [code]}


def test_enroll_url_encodes_reserved_characters() -> None:
    """Reserved characters in the server URL are percent-encoded, spaces as %20."""
    url = enroll_url("https://pg.example:8443/a b?x=1&y", VALID)
    assert url == (
        "pushgate://enroll?server=https%3A%2F%2Fpg.example%3A8443%2Fa%20b%3Fx%3D1%26y&code=" + VALID
    )
