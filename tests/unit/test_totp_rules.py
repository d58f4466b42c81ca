"""TOTP rules (SPEC §5): RFC 6238 codes, the ±1 window, code shape, two-code confirmation."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from approvals import totp

# RFC 6238 appendix B, SHA-1 seed "12345678901234567890"; six digits are the last six.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
STEP = 56_666_666
NOW = STEP * 30 + 7.5  # inside step STEP, away from its edges

secrets_ = st.binary(min_size=20, max_size=20).map(lambda b: base64.b32encode(b).decode())
times = st.floats(min_value=60.0, max_value=4_000_000_000.0, allow_nan=False)


def code(step: int, secret: str = SECRET) -> str:
    return totp.current_code(secret, step * 30.0)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (59, "287082"),
        (1111111109, "081804"),
        (1111111111, "050471"),
        (1234567890, "005924"),
        (2000000000, "279037"),
        (20000000000, "353130"),
    ],
)
def test_codes_match_rfc6238_sha1_vectors(now: int, expected: str) -> None:
    """current_code reproduces the RFC 6238 SHA-1 test vectors (30 s step, six digits)."""
    assert totp.current_code(RFC_SECRET, float(now)) == expected
    assert totp.match_step(RFC_SECRET, expected, float(now)) == now // 30


def test_new_secret_is_160_bit_base32() -> None:
    """A new secret is 32 base32 characters that decode to 20 random bytes."""
    secret = totp.new_secret()
    assert len(secret) == 32
    assert len(base64.b32decode(secret)) == 20
    assert secret != totp.new_secret()


def test_provisioning_uri_carries_issuer_account_and_secret() -> None:
    """The otpauth URI names issuer and account and round-trips to the same TOTP parameters."""
    uri = totp.provisioning_uri(SECRET, account="alice@example.com", issuer="Acme Corp")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == "/Acme Corp:alice@example.com"
    query = parse_qs(parts.query)
    assert query["secret"] == [SECRET]
    assert query["issuer"] == ["Acme Corp"]
    parsed = pyotp.parse_uri(uri)
    assert isinstance(parsed, pyotp.TOTP)
    assert (parsed.secret, parsed.digits, parsed.interval) == (SECRET, 6, 30)


def test_qr_svg_is_standalone_scalable_and_titled() -> None:
    """The QR code is well-formed SVG with a namespace, a viewBox, no fixed size and a title."""
    svg = totp.qr_svg("otpauth://totp/x:y?secret=" + SECRET, title="Scan <this> & add")
    # Parsing our own output, not untrusted input.
    root = ET.fromstring(svg)  # noqa: S314
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == ns + "svg"
    assert "viewBox" in root.attrib
    assert "width" not in root.attrib
    assert "height" not in root.attrib
    title = root.find(ns + "title")
    assert title is not None
    assert title.text == "Scan <this> & add"


def test_current_code_matches_its_own_step() -> None:
    """The code shown at a moment is accepted at that moment, as that moment's step."""
    assert totp.match_step(SECRET, code(STEP), NOW) == STEP


@pytest.mark.parametrize("offset", [-1, 1])
def test_codes_one_step_away_are_accepted(offset: int) -> None:
    """Codes of the previous and the next step match (±1 window) and report their own step."""
    assert totp.match_step(SECRET, code(STEP + offset), NOW) == STEP + offset


@pytest.mark.parametrize("offset", [-3, -2, 2, 3])
def test_codes_two_or_more_steps_away_are_refused(offset: int) -> None:
    """Codes outside the ±1 window do not match."""
    assert totp.match_step(SECRET, code(STEP + offset), NOW) is None


def test_window_zero_accepts_only_the_current_step() -> None:
    """With window=0 only the step containing now is tried."""
    assert totp.match_step(SECRET, code(STEP), NOW, window=0) == STEP
    assert totp.match_step(SECRET, code(STEP - 1), NOW, window=0) is None
    assert totp.match_step(SECRET, code(STEP + 1), NOW, window=0) is None


def test_negative_window_is_refused() -> None:
    """A negative window is a programming error."""
    with pytest.raises(ValueError, match="window"):
        totp.match_step(SECRET, code(STEP), NOW, window=-1)


def test_step_edges_follow_explicit_now() -> None:
    """At the first and last instant of a step, the window is centred on that step."""
    start, end = STEP * 30.0, STEP * 30.0 + 29.999
    assert totp.match_step(SECRET, code(STEP - 1), start) == STEP - 1
    assert totp.match_step(SECRET, code(STEP - 2), start) is None
    assert totp.match_step(SECRET, code(STEP + 1), end) == STEP + 1
    assert totp.match_step(SECRET, code(STEP + 2), end) is None


def test_wrong_code_is_refused() -> None:
    """A well-formed code of none of the window's steps does not match."""
    window_codes = {code(STEP + d) for d in (-1, 0, 1)}
    wrong = next(c for c in ("000000", "111111", "222222") if c not in window_codes)
    assert totp.match_step(SECRET, wrong, NOW) is None


def test_replayed_code_reports_the_same_step() -> None:
    """The same code matched twice gives the same step: the key of the caller's replay record."""
    assert totp.match_step(SECRET, code(STEP), NOW) == totp.match_step(SECRET, code(STEP), NOW + 20)


def test_step_stops_matching_at_step_usable_until() -> None:
    """A step matches until step_usable_until and not from then on, so its record may expire."""
    until = totp.step_usable_until(STEP)
    assert totp.match_step(SECRET, code(STEP), until - 0.001) == STEP
    assert totp.match_step(SECRET, code(STEP), until) is None


MALFORMED: list[object] = [
    " 123456",
    "123456 ",
    "123456\n",
    "123 456",
    "12345",
    "1234567",
    "+12345",
    "-12345",
    "12345a",
    "١٢٣٤٥٦",  # Arabic-Indic digits
    "１２３４５６",  # full-width digits
    "𝟏𝟐𝟑𝟒𝟓𝟔",  # mathematical bold digits
    "¹²³⁴⁵⁶",  # superscripts
    123456,
    123456.0,
    b"123456",
    ["123456"],
    None,
    "",
]


@pytest.mark.parametrize("bad", MALFORMED)
def test_malformed_codes_are_not_well_formed(bad: object) -> None:
    """Anything but a string of exactly six ASCII digits is malformed."""
    assert totp.is_well_formed(bad) is False


@pytest.mark.parametrize("bad", [c for c in MALFORMED if isinstance(c, str)])
def test_malformed_codes_never_match(bad: str) -> None:
    """A malformed string is refused before any comparison, whatever the secret and time."""
    assert totp.match_step(SECRET, bad, NOW) is None


def test_unicode_digits_equal_to_a_valid_code_are_refused() -> None:
    """The full-width spelling of the current code is refused although int() would accept it."""
    full_width = "".join(chr(ord(c) - ord("0") + ord("０")) for c in code(STEP))
    assert int(full_width) == int(code(STEP))
    assert totp.match_step(SECRET, full_width, NOW) is None


@given(st.from_regex(r"\A[0-9]{6}\Z", fullmatch=True))
def test_six_ascii_digits_are_well_formed(candidate: str) -> None:
    """Every string of exactly six ASCII digits is well formed."""
    assert totp.is_well_formed(candidate)


@given(st.text(max_size=8))
def test_well_formed_means_six_ascii_digits(candidate: str) -> None:
    """is_well_formed agrees with "six characters, each in 0-9" for arbitrary text."""
    expected = len(candidate) == 6 and all(c in "0123456789" for c in candidate)
    assert totp.is_well_formed(candidate) == expected


@given(secret=secrets_, now=times)
def test_code_shown_now_matches_current_step(secret: str, now: float) -> None:
    """For any secret and time, the code shown now matches at the step containing now."""
    shown = totp.current_code(secret, now)
    assert totp.is_well_formed(shown)
    step = totp.step_at(now)
    earlier = totp.current_code(secret, (step - 1) * 30.0)
    assume(earlier != shown)
    assert totp.match_step(secret, shown, now) == step


@given(secret=secrets_, now=times, offset=st.sampled_from([-2, 2]))
def test_codes_two_steps_away_never_match_unless_they_collide(
    secret: str, now: float, offset: int
) -> None:
    """A code two steps away matches only if it equals a code inside the window."""
    step = totp.step_at(now)
    far = totp.current_code(secret, (step + offset) * 30.0)
    assume(far not in {totp.current_code(secret, (step + d) * 30.0) for d in (-1, 0, 1)})
    assert totp.match_step(secret, far, now) is None


# Two-code confirmation


def test_current_and_next_codes_confirm() -> None:
    """Codes of steps n and n+1, in order, confirm and report both steps."""
    assert totp.confirm_steps(SECRET, [code(STEP), code(STEP + 1)], NOW) == (STEP, STEP + 1)


def test_previous_and_current_codes_confirm() -> None:
    """Codes of steps n-1 and n, in order, confirm: the window is ±1 around now."""
    assert totp.confirm_steps(SECRET, [code(STEP - 1), code(STEP)], NOW) == (STEP - 1, STEP)


def test_one_code_does_not_confirm() -> None:
    """A single valid code is not enough to activate a key."""
    assert totp.confirm_steps(SECRET, [code(STEP)], NOW) is None
    assert totp.confirm_steps(SECRET, [], NOW) is None


def test_two_equal_codes_do_not_confirm() -> None:
    """The same code twice is refused."""
    assert totp.confirm_steps(SECRET, [code(STEP), code(STEP)], NOW) is None


def test_codes_in_reverse_order_do_not_confirm() -> None:
    """Consecutive codes given newest first are refused."""
    assert totp.confirm_steps(SECRET, [code(STEP + 1), code(STEP)], NOW) is None


def test_non_consecutive_codes_do_not_confirm() -> None:
    """Codes of steps n-1 and n+1 (both inside the window) are refused."""
    assert totp.confirm_steps(SECRET, [code(STEP - 1), code(STEP + 1)], NOW) is None


@pytest.mark.parametrize("first", [STEP - 2, STEP + 1])
def test_consecutive_codes_outside_the_window_do_not_confirm(first: int) -> None:
    """A consecutive pair with a step outside ±1 of now is refused."""
    assert totp.confirm_steps(SECRET, [code(first), code(first + 1)], NOW) is None


def test_three_codes_do_not_confirm() -> None:
    """Exactly two codes are expected."""
    codes = [code(STEP - 1), code(STEP), code(STEP + 1)]
    assert totp.confirm_steps(SECRET, codes, NOW) is None


@pytest.mark.parametrize("bad", [c for c in MALFORMED if isinstance(c, str)])
def test_a_malformed_code_spoils_the_pair(bad: str) -> None:
    """One malformed code in either position refuses the confirmation."""
    assert totp.confirm_steps(SECRET, [bad, code(STEP)], NOW) is None
    assert totp.confirm_steps(SECRET, [code(STEP), bad], NOW) is None


@given(secret=secrets_, now=times, first_offset=st.sampled_from([-1, 0]))
def test_any_consecutive_pair_in_the_window_confirms(
    secret: str, now: float, first_offset: int
) -> None:
    """For any secret and time, the codes of two consecutive steps in the window confirm."""
    step = totp.step_at(now) + first_offset
    first = totp.current_code(secret, step * 30.0)
    second = totp.current_code(secret, (step + 1) * 30.0)
    assume(first != second)
    assert totp.confirm_steps(secret, [first, second], now) == (step, step + 1)
