"""The cluster rig's per-fault report, computed from recorded runs (no cluster needed)."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

RIG = Path(__file__).resolve().parents[2] / "loadtests" / "cluster"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"cluster_rig_{name}", RIG / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


analysis = _load("analysis")
T0 = 1_000_000.0


def login(cid: str, at: float, **fields: object) -> object:
    values: dict[str, object] = {
        "decision": "approve",
        "answer_statuses": (200,),
        "told": "approved",
        "final": "approved",
        "decided_at": at + 1,
        "expires_at": at + 60,
        **fields,
    }
    return analysis.Login(cid, at, **values)


def request(at: float, ok: bool = True, status: int = 200, **fields: object) -> object:
    values: dict[str, object] = {"name": "/v1/challenges", "ms": 5.0, "retry_after": False}
    values.update(fields)
    return analysis.Request(at, ok=ok, status=status, **values)


def test_lost_and_doubled_approvals_and_wrong_portals_are_counted_per_fault() -> None:
    """An approval the portal was told but Redis lost, one approved twice in the audit stream,
    and a portal told another state than Redis keeps, all in the fault's slot; a login
    created before the slot is not counted."""
    fault = analysis.FaultWindow("primary killed", "valkey", T0, T0 + 4)
    logins = [
        login("kept", T0 - 5),
        login("lost", T0 - 2, final="pending"),
        login("twice", T0 + 1),
        login("denied-told-approved", T0 + 2, decision="deny", final="denied"),
        login("long-before", T0 - 100, final="pending"),
    ]
    approvals = Counter({"kept": 1, "twice": 2})
    report = analysis.fault_report(fault, T0 + 60, [], logins, approvals, [])
    assert report["logins"] == 4
    assert report["approvals_lost"] == 2  # "lost", and "denied-told-approved" told approved
    assert report["approvals_applied_twice"] == 1
    assert report["portals_with_true_state"] == 2
    broken = analysis.broken_promises([report])
    assert any("approvals lost = 2" in line for line in broken)
    assert any("did not end with the true state" in line for line in broken)


def test_error_rate_retry_after_and_time_back_to_zero() -> None:
    """Failures after the fault count in its window, split by Retry-After; the error rate is
    back to zero after the last failure of the slot."""
    fault = analysis.FaultWindow("primary killed", "valkey", T0, T0 + 3)
    requests = [
        request(T0 - 10),
        request(T0 + 1, ok=False, status=503, retry_after=True),
        request(T0 + 2, ok=False, status=503),
        request(T0 + 2.5, ok=False, status=0),
        request(T0 + 3.5),
        request(T0 + 30),
    ]
    report = analysis.fault_report(fault, T0 + 40, requests, [], Counter(), [])
    assert report["error_rate_zero_after_s"] == 2.5
    assert (report["retry_after_503s"], report["other_503s"], report["other_errors"]) == (1, 1, 1)
    assert report["requests_during"] == 4
    assert report["error_rate_during"] == 0.75


def test_prompts_twice_after_the_answer_and_after_expiry() -> None:
    """Two copies to one phone, a prompt that landed after the answer and one after expiry."""
    fault = analysis.FaultWindow("worker killed", "worker", T0, T0 + 10)
    logins = [login("a", T0), login("b", T0 + 1)]
    prompts = [
        analysis.Prompt("a", "tok", T0 + 0.5),
        analysis.Prompt("a", "tok", T0 + 0.6),
        analysis.Prompt("b", "tok", T0 + 2.5),
        analysis.Prompt("b", "tok2", T0 + 70),
    ]
    report = analysis.fault_report(fault, T0 + 60, [], logins, Counter(), prompts)
    assert report["prompts_sent_twice"] == 1
    assert (report["prompts_after_the_answer"], report["prompts_after_expiry"]) == (2, 1)


def test_report_table_has_one_column_per_fault() -> None:
    """The markdown table names every fault in its header and has a row per figure."""
    faults = [
        analysis.FaultWindow("primary killed", "valkey :1", T0, T0 + 4, ["+4.0 s: replica"]),
        analysis.FaultWindow("gateway killed", "serve :2", T0 + 60, T0 + 70),
    ]
    reports = [
        analysis.fault_report(f, end, [request(f.started + 1)], [], Counter(), [])
        for f, end in zip(faults, (T0 + 60, T0 + 120), strict=True)
    ]
    table = analysis.render(reports)
    assert table.splitlines()[0] == "| | primary killed | gateway killed |"
    assert len(table.splitlines()) == 2 + len(analysis.ROWS)
    assert analysis.broken_promises(reports) == []
