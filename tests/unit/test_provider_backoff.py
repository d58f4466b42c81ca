"""Provider retries wait with exponential backoff and equal jitter. Pure."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pusher.backoff import BACKOFF_BASE, BACKOFF_CAP, backoff_delay


@given(attempt=st.integers(0, 40), rand=st.floats(0.0, 1.0))
def test_provider_retry_waits_half_its_ceiling_plus_a_random_share_of_the_rest(
    attempt: int, rand: float
) -> None:
    """Equal jitter: the fixed half of min(0.25 s * 2^attempt, 8 s) plus up to the other half."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)
    delay = backoff_delay(attempt, rand=lambda: rand)
    assert delay == pytest.approx(ceiling / 2 + rand * ceiling / 2)
    assert ceiling / 2 <= delay <= ceiling


@given(attempt=st.integers(0, 40), retry_after=st.floats(0.0, 3600.0), rand=st.floats(0.0, 1.0))
def test_provider_retry_after_is_a_floor(attempt: int, retry_after: float, rand: float) -> None:
    """A provider's Retry-After is never undercut; a shorter one leaves the backoff as it is."""
    delay = backoff_delay(attempt, retry_after, rand=lambda: rand)
    assert delay == max(retry_after, backoff_delay(attempt, rand=lambda: rand))
