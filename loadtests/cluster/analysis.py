"""The cluster rig's per-fault report, computed from what the run recorded (standard library
only, so the unit tests check it without a cluster).

Inputs: every request locust made (end time, name, ok, status, whether it carried
``Retry-After``), every login a portal made (the ledger: created when, how the phone's answers
were received, what the portal was told), the final state of each challenge read from Redis
after the run, the ``challenge.approved`` audit events per challenge, and every prompt the
stand-ins accepted.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

WINDOW_SECONDS = 15.0  # "before" and "after" windows around a fault
SLOT_LEAD_SECONDS = 30.0  # logins created this long before a fault are counted for it
CREATE = "/v1/challenges"
APPROVE_TO_RESULT = "WS approve->result"


@dataclass(frozen=True)
class Request:
    """One request (or custom event) as locust recorded it."""

    t: float  # when it ended, epoch seconds
    name: str
    ms: float
    ok: bool
    status: int | None = None
    retry_after: bool = False
    kind: str = ""


@dataclass(frozen=True)
class Login:
    """One portal login from the ledger, with the final state of its challenge."""

    id: str
    created_at: float
    decision: str | None  # "approve" | "deny" | None (the phone never answered)
    answer_statuses: tuple[int, ...]
    told: str | None  # status of the result the portal was told, None if never
    final: str | None  # status Redis has after the run, None if the record is gone
    decided_at: float | None = None  # epoch seconds
    expires_at: float | None = None


@dataclass(frozen=True)
class Prompt:
    """A prompt a stand-in accepted."""

    challenge_id: str
    token: str
    at: float


@dataclass
class FaultWindow:
    """When a fault happened and when the rig saw it recover (epoch seconds)."""

    name: str
    target: str
    started: float
    recovered: float | None
    notes: list[str] = field(default_factory=list)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ranked = sorted(values)
    return ranked[max(0, math.ceil(q * len(ranked)) - 1)]


def _latencies(requests: Iterable[Request], name: str, start: float, end: float) -> list[float]:
    return [r.ms for r in requests if r.name == name and r.ok and start <= r.t < end]


def _p50_p99(values: Sequence[float]) -> str:
    if not values:
        return "–"
    p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
    return f"{p50:.0f} / {p99:.0f}"


def approval_acknowledged(login: Login) -> bool:
    """The portal was told "approved", or the phone's approval was answered 200."""
    return login.told == "approved" or (
        login.decision == "approve" and 200 in login.answer_statuses
    )


def fault_report(
    fault: FaultWindow,
    next_start: float,
    requests: Sequence[Request],
    logins: Sequence[Login],
    approvals: Counter[str],
    prompts: Sequence[Prompt],
) -> dict[str, Any]:
    """Every figure of one fault: challenge outcomes of the logins created from 30 s before
    it until 30 s before the next one, error figures and latencies around it."""
    start = fault.started
    judged = [r for r in requests if r.kind != "SECURITY"]
    slot = [r for r in judged if start <= r.t < next_start]
    failures = [r for r in slot if not r.ok]
    back_to_zero = (max(r.t for r in failures) - start) if failures else 0.0
    during_end = max(fault.recovered or start, start + back_to_zero) + 1.0
    during = [r for r in judged if start <= r.t < during_end]
    errors = [r for r in during if not r.ok]
    after_end = min(during_end + WINDOW_SECONDS, next_start)
    windows = {
        "before": (start - WINDOW_SECONDS, start),
        "during": (start, during_end),
        "after": (during_end, after_end),
    }
    mine = [
        g
        for g in logins
        if start - SLOT_LEAD_SECONDS <= g.created_at < next_start - SLOT_LEAD_SECONDS
    ]
    ids = {g.id for g in mine}
    by_id = {g.id: g for g in mine}
    copies = Counter((p.challenge_id, p.token) for p in prompts if p.challenge_id in ids)
    mine_prompts = [p for p in prompts if p.challenge_id in ids]
    expired = [p for p in mine_prompts if _after(p, by_id[p.challenge_id].expires_at)]
    answered = [p for p in mine_prompts if _after(p, by_id[p.challenge_id].decided_at)]
    return {
        "fault": fault.name,
        "target": fault.target,
        "notes": list(fault.notes),
        "recovered_after_s": None if fault.recovered is None else round(fault.recovered - start, 1),
        "logins": len(mine),
        "approvals_lost": sum(approval_acknowledged(g) and g.final != "approved" for g in mine),
        "approvals_applied_twice": sum(approvals[g.id] > 1 for g in mine),
        "portals_with_true_state": sum(g.told is not None and g.told == g.final for g in mine),
        "portals_told_nothing": sum(g.told is None for g in mine),
        "prompts_sent_twice": sum(n > 1 for n in copies.values()),
        "prompts_after_expiry": len(expired),
        "prompts_after_the_answer": len(answered),
        "requests_during": len(during),
        "error_rate_during": round(len(errors) / len(during), 4) if during else 0.0,
        "retry_after_503s": sum(r.status == 503 and r.retry_after for r in errors),
        "other_503s": sum(r.status == 503 and not r.retry_after for r in errors),
        "other_errors": sum(r.status != 503 for r in errors),
        "error_rate_zero_after_s": round(back_to_zero, 1),
        "create_ms_p50_p99": {
            k: _p50_p99(_latencies(judged, CREATE, a, b)) for k, (a, b) in windows.items()
        },
        "approve_to_portal_ms_p50_p99": {
            k: _p50_p99(_latencies(judged, APPROVE_TO_RESULT, a, b))
            for k, (a, b) in windows.items()
        },
    }


def _after(prompt: Prompt, moment: float | None) -> bool:
    return moment is not None and prompt.at > moment


ROWS = (
    ("what happened", lambda r: "<br>".join([r["target"], *r["notes"]])),
    ("logins counted", lambda r: r["logins"]),
    ("approvals lost", lambda r: r["approvals_lost"]),
    ("approvals applied twice", lambda r: r["approvals_applied_twice"]),
    ("portals told the true state", lambda r: f"{r['portals_with_true_state']} / {r['logins']}"),
    ("portals told nothing", lambda r: r["portals_told_nothing"]),
    ("prompts sent twice", lambda r: r["prompts_sent_twice"]),
    ("prompts accepted after expiry / after the answer", lambda r: (
        f"{r['prompts_after_expiry']} / {r['prompts_after_the_answer']}"
    )),
    ("error rate during", lambda r: f"{r['error_rate_during']:.2%} of {r['requests_during']}"),
    ("503 with Retry-After / other 503 / other errors", lambda r: (
        f"{r['retry_after_503s']} / {r['other_503s']} / {r['other_errors']}"
    )),
    ("error rate back to zero after", lambda r: f"{r['error_rate_zero_after_s']} s"),
    ("create p50 / p99 ms: before, during, after", lambda r: ", ".join(
        r["create_ms_p50_p99"][k] for k in ("before", "during", "after")
    )),
    ("approve→portal p50 / p99 ms: before, during, after", lambda r: ", ".join(
        r["approve_to_portal_ms_p50_p99"][k] for k in ("before", "during", "after")
    )),
)  # fmt: skip


def render(reports: Sequence[dict[str, Any]]) -> str:
    """The per-fault table, one column per fault."""
    head = "| | " + " | ".join(r["fault"] for r in reports) + " |"
    rule = "|---|" + "---|" * len(reports)
    lines = [head, rule]
    for label, value in ROWS:
        lines.append(f"| {label} | " + " | ".join(str(value(r)) for r in reports) + " |")
    return "\n".join(lines) + "\n"


def broken_promises(reports: Sequence[dict[str, Any]]) -> list[str]:
    """What must never happen, whatever the fault: the run fails on any of it."""
    broken = []
    for r in reports:
        for key in ("approvals_lost", "approvals_applied_twice", "prompts_after_expiry"):
            if r[key]:
                broken.append(f"{r['fault']}: {key.replace('_', ' ')} = {r[key]}")
        wrong = r["logins"] - r["portals_with_true_state"]
        if wrong:
            broken.append(f"{r['fault']}: {wrong} waiting portals did not end with the true state")
    return broken
