"""SPEC §7's policy table, written out independently of the model so tests can check it."""

from __future__ import annotations

#: field -> (default, lowest, highest)
POLICY_BOUNDS: dict[str, tuple[int, int, int]] = {
    "push_ttl_seconds": (60, 15, 300),
    "dedupe_seconds": (60, 0, 600),
    "number_digits": (2, 2, 3),
    "max_pushes_per_window": (5, 1, 100),
    "push_window_seconds": (600, 60, 86400),
    "max_unanswered_pushes": (10, 1, 100),
    "fraud_block_seconds": (3600, 0, 86400),
    "totp_max_attempts": (5, 1, 10),
    "lockout_seconds": (900, 0, 86400),
    "enrollment_period_days": (7, 0, 90),
    "result_retention_seconds": (300, 30, 86400),
}
