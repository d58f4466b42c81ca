"""Pure rules of the load test: push-cap violations, TOTP step choice and pass/fail thresholds.

Standard library only, so the project's unit tests import this module without locust.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

TOTP_STEP_SECONDS = 30
TOTP_PAST_STEP_MARGIN = 5.0


class PushLedger:
    """What a push-bombing attacker saw for one victim, judged against the victim's policy.

    Times are the attacker's monotonic clock around each request (sent, answer received).
    A violation is only reported when it is certain whatever the server's exact time was:
    the pushes counted are those surely inside the same window as the new one.
    """

    def __init__(self, max_pushes: int, window_seconds: float, fraud_block_seconds: float) -> None:
        self.max_pushes = max_pushes
        self.window_seconds = window_seconds
        self.fraud_block_seconds = fraud_block_seconds
        self.created_sent: list[float] = []
        self.fraud: tuple[float, float] | None = None

    def created(self, sent: float, received: float) -> str | None:
        """Record a 201 for the victim; return why it breaks the policy, or None."""
        in_window = sum(1 for s in self.created_sent if s > received - self.window_seconds)
        self.created_sent.append(sent)
        if in_window >= self.max_pushes:
            return (
                f"201 after {in_window} pushes within {self.window_seconds:g} s "
                f"(max_pushes_per_window={self.max_pushes})"
            )
        if self.fraud is not None:
            fraud_sent, fraud_received = self.fraud
            if sent > fraud_received and received - fraud_sent < self.fraud_block_seconds:
                return "201 while pushes are blocked after a fraud report"
        return None

    def fraud_reported(self, sent: float, received: float) -> None:
        """Record that the victim's fraud report was accepted."""
        self.fraud = (sent, received)


def totp_step(last_used: int | None, now: float) -> int | None:
    """The time step to send a code for: the oldest the server accepts (+-1 step) that this
    user has not used yet, or None when every acceptable step is used up.

    The past step is skipped near the end of the current one, so a code never turns stale
    on its way to the server.
    """
    current = int(now // TOTP_STEP_SECONDS)
    into_step = now - current * TOTP_STEP_SECONDS
    first = current - 1 if into_step < TOTP_STEP_SECONDS - TOTP_PAST_STEP_MARGIN else current
    for step in range(first, current + 2):
        if last_used is None or step > last_used:
            return step
    return None


@dataclass(frozen=True)
class Thresholds:
    """Pass/fail limits of a run (``thresholds.toml``, overridden by ``LOADTEST_<NAME>``)."""

    max_error_rate: float = 0.01
    max_p99_create_ms: float = 250.0
    max_p99_approve_to_result_ms: float = 500.0
    max_security_violations: int = 0
    min_results: int = 1

    @classmethod
    def load(cls, path: Path | None = None, env: Mapping[str, str] | None = None) -> Thresholds:
        """Read the TOML file (if any), then environment overrides."""
        env = os.environ if env is None else env
        values: dict[str, float | int] = {}
        if path is not None and path.is_file():
            values.update(tomllib.loads(path.read_text()).get("thresholds", {}))
        for spec in fields(cls):
            raw = env.get(f"LOADTEST_{spec.name.upper()}")
            if raw:
                values[spec.name] = float(raw)
        unknown = set(values) - {spec.name for spec in fields(cls)}
        if unknown:
            raise ValueError(f"unknown thresholds: {', '.join(sorted(unknown))}")
        defaults = cls()
        return cls(**{name: type(getattr(defaults, name))(v) for name, v in values.items()})


@dataclass(frozen=True)
class Measured:
    """The numbers a run is judged on."""

    requests: int
    failures: int
    p99_create_ms: float | None
    p99_approve_to_result_ms: float | None
    results: int
    security_violations: int

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0


def failed_thresholds(limits: Thresholds, run: Measured) -> list[str]:
    """Every threshold the run broke, as a sentence; empty when the run passes."""
    broken = []
    if run.error_rate > limits.max_error_rate:
        broken.append(f"error rate {run.error_rate:.2%} > {limits.max_error_rate:.2%}")
    if run.p99_create_ms is None or run.p99_create_ms > limits.max_p99_create_ms:
        broken.append(f"p99 create {run.p99_create_ms} ms > {limits.max_p99_create_ms:g} ms")
    p99 = run.p99_approve_to_result_ms
    if p99 is None or p99 > limits.max_p99_approve_to_result_ms:
        broken.append(f"p99 approve->result {p99} ms > {limits.max_p99_approve_to_result_ms:g} ms")
    if run.results < limits.min_results:
        broken.append(f"{run.results} portal results < {limits.min_results}")
    if run.security_violations > limits.max_security_violations:
        broken.append(
            f"{run.security_violations} security violations > {limits.max_security_violations}"
        )
    return broken
