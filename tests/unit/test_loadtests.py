"""The load tests' own rules, and that they never pull the asyncio app into gevent."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

LOADTESTS = Path(__file__).resolve().parents[2] / "loadtests"
APP_LIBRARIES = {"aiohttp", "redis", "asyncio", "uvloop", "gateway", "pusher", "aioapns"}
PUSHGATE_MODULES = {
    "pushgate.devicekit.answers",
    "pushgate.devicekit.authenticator",
    "pushgate.devicekit.enrollment",
    "approvals.binding",
    "integrations.radius.dictionary",
}
LOCAL_MODULES = {"common", "rules", "radius_client", "radius_user"}


def _load_rules() -> ModuleType:
    spec = importlib.util.spec_from_file_location("loadtest_rules", LOADTESTS / "rules.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


rules = _load_rules()


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_loadtest_modules_import_no_asyncio_app_libraries() -> None:
    """No load-test module imports aiohttp, redis, asyncio or the gateway/pusher packages."""
    modules = sorted(LOADTESTS.glob("*.py"))
    assert {p.stem for p in modules} >= {"locustfile", *LOCAL_MODULES}
    for path in modules:
        for name in _imports(path):
            assert name.split(".")[0] not in APP_LIBRARIES, (path.name, name)
            if name.split(".")[0] in ("pushgate", "approvals", "policies", "integrations"):
                assert name in PUSHGATE_MODULES, (path.name, name)


def test_cluster_rig_users_import_only_the_load_test_modules() -> None:
    """The cluster rig's locust file (run under gevent) imports the load-test users, never the
    asyncio app or the rig's own orchestration modules."""
    for name in _imports(LOADTESTS / "cluster" / "users.py"):
        assert name.split(".")[0] not in APP_LIBRARIES | {"pushgate", "approvals"}, name
        assert name not in ("stack", "faults", "rig", "analysis"), name


def test_pushgate_modules_the_load_tests_use_load_without_the_app_libraries() -> None:
    """Importing the devicekit pieces and the binding leaves asyncio, aiohttp and redis unloaded."""
    probe = (
        "import sys\n"
        + "".join(f"import {name}\n" for name in sorted(PUSHGATE_MODULES))
        + "loaded = sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:]))\n"
        + "print(','.join(loaded))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *sorted(APP_LIBRARIES)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=LOADTESTS.parent,
        check=True,
    )
    assert done.stdout.strip() == ""


def test_push_ledger_flags_a_201_past_the_window_cap() -> None:
    """A sixth 201 within the window (max 5) is a violation; the first five are not."""
    ledger = rules.PushLedger(max_pushes=5, window_seconds=600, fraud_block_seconds=3600)
    assert [ledger.created(t, t + 0.01) for t in range(5)] == [None] * 5
    assert "max_pushes_per_window=5" in ledger.created(10.0, 10.01)


def test_push_ledger_ignores_pushes_that_may_have_left_the_window() -> None:
    """Pushes sent more than one window before the new answer no longer count."""
    ledger = rules.PushLedger(max_pushes=2, window_seconds=60, fraud_block_seconds=0)
    assert ledger.created(0.0, 0.1) is None
    assert ledger.created(1.0, 1.1) is None
    assert ledger.created(61.0, 61.2) is None


def test_push_ledger_flags_a_201_sent_after_an_accepted_fraud_report() -> None:
    """After the fraud report was answered, any 201 within the block time is a violation."""
    ledger = rules.PushLedger(max_pushes=100, window_seconds=600, fraud_block_seconds=3600)
    ledger.fraud_reported(5.0, 5.1)
    assert ledger.created(5.05, 5.2) is None  # may have been created before the report
    assert ledger.created(6.0, 6.1) == "201 while pushes are blocked after a fraud report"


def test_totp_step_takes_the_oldest_unused_acceptable_step() -> None:
    """The previous step first, never a used one, none when every acceptable step is used."""
    now = 1000 * 30 + 10.0  # 10 s into step 1000
    assert rules.totp_step(None, now) == 999
    assert rules.totp_step(999, now) == 1000
    assert rules.totp_step(1001, now) is None


def test_totp_step_skips_the_previous_step_near_the_end_of_the_current_one() -> None:
    """With less than five seconds left in the step, the previous step is not used."""
    assert rules.totp_step(None, 1000 * 30 + 27.0) == 1000


def test_thresholds_read_the_file_then_environment_overrides(tmp_path: Path) -> None:
    """Values come from thresholds.toml, LOADTEST_<NAME> wins, unknown names are refused."""
    config = tmp_path / "thresholds.toml"
    config.write_text("[thresholds]\nmax_p99_create_ms = 100\nmin_results = 7\n")
    limits = rules.Thresholds.load(config, {"LOADTEST_MAX_ERROR_RATE": "0.05"})
    assert (limits.max_p99_create_ms, limits.min_results, limits.max_error_rate) == (100, 7, 0.05)
    assert isinstance(limits.min_results, int)
    config.write_text("[thresholds]\nmax_p50 = 1\n")
    with pytest.raises(ValueError, match="max_p50"):
        rules.Thresholds.load(config, {})


def test_a_run_fails_on_each_broken_threshold_and_passes_within_all() -> None:
    """Error rate, both p99s, too few results and any violation each fail the run."""
    limits = rules.Thresholds()
    good = rules.Measured(1000, 1, 20.0, 30.0, 100, 0)
    assert rules.failed_thresholds(limits, good) == []
    bad = rules.Measured(100, 5, 900.0, None, 0, 2)
    broken = rules.failed_thresholds(limits, bad)
    assert len(broken) == 5
    assert any("security violations" in line for line in broken)
