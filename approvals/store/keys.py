"""Redis key and channel names. Every per-user key carries its shard's hash tag ``{pg:<n>}``.

Shard ``k`` (0 <= k < ``PUSHGATE_SHARDS``) uses the tag of its label ``n = LABELS[k]``: the
labels are chosen so that the first 2^j shards' slots are evenly spaced over the 16,384 Cluster
slots (shard k's slot lies in the 16-slot window starting at ``bitreverse10(k) * 16``), so a
Cluster whose primaries own equal slot ranges gets within one shard of an equal share of them,
for any number of primaries up to the shard count.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from functools import cache

AUTH_TAG = "{pg:auth}"
MAX_SHARDS = 1024
CLUSTER_SLOTS = 16384
_WINDOW = CLUSTER_SLOTS // MAX_SHARDS


def label_slot(label: int) -> int:
    """The Cluster slot of the tag ``{pg:<label>}`` (CRC16 of what is inside the braces)."""
    return binascii.crc_hqx(f"pg:{label}".encode(), 0) % CLUSTER_SLOTS


def _bit_reversed(index: int, bits: int = 10) -> int:
    return int(f"{index:0{bits}b}"[::-1], 2)


@cache
def _labels() -> tuple[tuple[int, ...], dict[int, int]]:
    """Shard -> label (the smallest integer whose slot falls in the shard's window; windows are
    visited in bit-reversed order, so any power-of-two prefix of shards is evenly spaced), and
    label -> shard."""
    window_of = {_bit_reversed(k): k for k in range(MAX_SHARDS)}
    labels: list[int | None] = [None] * MAX_SHARDS
    missing, candidate = MAX_SHARDS, 0
    while missing:
        shard = window_of[label_slot(candidate) // _WINDOW]
        if labels[shard] is None:
            labels[shard] = candidate
            missing -= 1
        candidate += 1
    found = tuple(int(label) for label in labels if label is not None)
    return found, {label: shard for shard, label in enumerate(found)}


def shard_of_key(key: str) -> int:
    """The shard of a shard's key (``{pg:<label>}:...``)."""
    return _labels()[1][int(key.split(":", 1)[1].split("}", 1)[0])]


def tag(shard: int) -> str:
    """The hash tag of a shard: all keys of one user live in one Cluster slot."""
    return f"{{pg:{_labels()[0][shard]}}}"


@dataclass(frozen=True, slots=True)
class UserKeys:
    """The keys of one (tenant, user) in its shard."""

    shard: int
    tenant: str
    user_id: str

    @property
    def _base(self) -> str:
        return f"{tag(self.shard)}:{self.tenant}:{self.user_id}"

    @property
    def user(self) -> str:
        return f"{self._base}:user"

    @property
    def devices(self) -> str:
        return f"{self._base}:devices"

    @property
    def active_devices(self) -> str:
        return f"{self._base}:active"

    @property
    def pending(self) -> str:
        return f"{self._base}:pending"

    @property
    def push_window(self) -> str:
        return f"{self._base}:pushes"

    @property
    def totp_steps(self) -> str:
        return f"{self._base}:totp_steps"

    @property
    def device_channel(self) -> str:
        return f"{self._base}:device_events"

    def dedupe(self, resource: str) -> str:
        return f"{self._base}:dedupe:{resource}"


def challenge(shard: int, challenge_id: str) -> str:
    return f"{tag(shard)}:challenge:{challenge_id}"


def challenge_channel(shard: int, challenge_id: str) -> str:
    return f"{tag(shard)}:challenge_events:{challenge_id}"


def device(shard: int, device_id: str) -> str:
    return f"{tag(shard)}:device:{device_id}"


def enrollment(shard: int, code_digest: str) -> str:
    return f"{tag(shard)}:enrollment:{code_digest}"


def jobs(shard: int) -> str:
    """The shard's push job stream."""
    return f"{tag(shard)}:jobs"


def outbox(shard: int) -> str:
    """The shard's audit-event outbox, relayed by the worker to the tenant's event stream."""
    return f"{tag(shard)}:outbox"


def expiry_index(shard: int) -> str:
    """Pending challenges of the shard by deadline, swept by the worker."""
    return f"{tag(shard)}:expiry"


def enrollment_index(shard: int) -> str:
    """The shard's users in an enrollment period, scored by their next reminder/expiry time."""
    return f"{tag(shard)}:enrollment_deadlines"


def enrollment_member(tenant_id: str, user_id: str) -> str:
    """A user's member in the enrollment index (ids never contain ``|``)."""
    return f"{tenant_id}|{user_id}"


def tenant(tenant_id: str) -> str:
    return f"{AUTH_TAG}:tenant:{tenant_id}"


def tenants_named(name: str) -> str:
    """Ids of the tenants created with ``name`` (names are labels, not unique)."""
    return f"{AUTH_TAG}:tenants_named:{name}"


def api_key(key_digest: str) -> str:
    return f"{AUTH_TAG}:key:{key_digest}"


def api_key_id(key_id: str) -> str:
    return f"{AUTH_TAG}:key_id:{key_id}"


def policy(tenant_id: str) -> str:
    return f"{AUTH_TAG}:policy:{tenant_id}"


AUTH_CHANGED_CHANNEL = f"{AUTH_TAG}:changed"

#: tenants with a webhook, for the worker to walk
WEBHOOK_TENANTS = f"{AUTH_TAG}:webhook_tenants"


def tenant_events(tenant_id: str) -> str:
    """The tenant's capped audit stream (the read side of the outbox)."""
    return f"{{pg:events:{tenant_id}}}:events"


def _events_base(tenant_id: str) -> str:
    return f"{{pg:events:{tenant_id}}}"


def webhook(tenant_id: str) -> str:
    """The tenant's webhook: url, event types and the sealed signing secret."""
    return f"{_events_base(tenant_id)}:webhook"


def webhook_cursor(tenant_id: str) -> str:
    """The last event id of the tenant stream already queued for the webhook."""
    return f"{_events_base(tenant_id)}:webhook_cursor"


def webhook_due(tenant_id: str) -> str:
    """Event ids awaiting delivery, scored by their next attempt time (epoch ms)."""
    return f"{_events_base(tenant_id)}:webhook_due"


def webhook_tries(tenant_id: str) -> str:
    """Event id -> delivery attempts so far."""
    return f"{_events_base(tenant_id)}:webhook_tries"


def webhook_last_error(tenant_id: str) -> str:
    """The latest failed delivery of the tenant's webhook (event id, reason, time)."""
    return f"{_events_base(tenant_id)}:webhook_last_error"


def webhook_since(tenant_id: str) -> str:
    """Event id -> when it was queued (epoch ms); retries stop 24 h later."""
    return f"{_events_base(tenant_id)}:webhook_since"
