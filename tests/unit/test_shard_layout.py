"""The shards' hash tags spread evenly over a Cluster's slots, whatever the primary count."""

from __future__ import annotations

import bisect
from collections import Counter

import pytest
from redis.crc import key_slot

from approvals.store import keys


def shards_per_primary(shards: int, primaries: int) -> list[int]:
    """How many shards each primary serves when primaries own equal slot ranges (the layout
    ``valkey-cli --cluster create`` and ``pushgate.embedded.form_cluster`` make)."""
    bounds = [i * keys.CLUSTER_SLOTS // primaries for i in range(primaries + 1)]
    slots = [key_slot(keys.tag(shard).encode()) for shard in range(shards)]
    owners = Counter(bisect.bisect_right(bounds, slot) - 1 for slot in slots)
    return [owners.get(i, 0) for i in range(primaries)]


def test_every_shard_has_its_own_slot_and_label() -> None:
    """1024 shards, 1024 distinct slots; a shard's key names its shard back."""
    slots = {key_slot(keys.tag(shard).encode()) for shard in range(keys.MAX_SHARDS)}
    assert len(slots) == keys.MAX_SHARDS
    for shard in (0, 1, 127, 1023):
        assert keys.shard_of_key(keys.jobs(shard)) == shard


@pytest.mark.parametrize("primaries", [3, 6, 10, 30, 64])
def test_the_default_128_shards_are_within_one_of_an_equal_share(primaries: int) -> None:
    """Up to 64 primaries, every primary serves floor or ceil of 128 / primaries shards."""
    spread = shards_per_primary(128, primaries)
    assert sum(spread) == 128
    assert max(spread) - min(spread) <= 1, spread


def test_a_power_of_two_shard_count_uses_evenly_spaced_windows() -> None:
    """Shard k's slot lies in the 16-slot window at bitreverse(k) * 16: the first 2^j shards
    sit one per 16384 / 2^j slots."""
    for shards in (16, 128, 1024):
        windows = sorted(key_slot(keys.tag(s).encode()) // (16384 // shards) for s in range(shards))
        assert windows == list(range(shards))
