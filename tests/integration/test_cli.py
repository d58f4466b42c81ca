"""The pushgate command line against a real private Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pushgate.embedded import EmbeddedRedis
from tests.conftest import TEST_SECRET_KEY


def run_cli(*args: str, redis_url: str | None, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PUSHGATE_")}
    if redis_url:
        environment["PUSHGATE_REDIS_URL"] = redis_url
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pushgate.cli", *args],
        capture_output=True, text=True, env=environment, timeout=60, check=False,
    )  # fmt: skip


async def test_tenant_and_key_commands_print_one_json_object(redis_url: str) -> None:
    """tenant create, apikey create and apikey revoke print JSON on stdout and exit 0."""
    tenant = run_cli("tenant", "create", "acme", redis_url=redis_url)
    assert tenant.returncode == 0, tenant.stderr
    created = json.loads(tenant.stdout)
    assert created["tenant_id"].startswith("tn_")
    assert created["admin_key"].startswith("pg_live_")
    key = run_cli("apikey", "create", created["tenant_id"], "--role", "portal", redis_url=redis_url)
    issued = json.loads(key.stdout)
    assert issued["role"] == "portal"
    assert issued["api_key"].startswith("pg_live_")
    revoked = run_cli("apikey", "revoke", issued["key_id"], redis_url=redis_url)
    assert json.loads(revoked.stdout) == {"key_id": issued["key_id"], "revoked": True}
    again = run_cli("apikey", "revoke", issued["key_id"], redis_url=redis_url)
    assert again.returncode == 1


async def test_key_for_unknown_tenant_is_refused(redis_url: str) -> None:
    """apikey create for a tenant that does not exist exits non-zero with a message."""
    result = run_cli("apikey", "create", "tn_missing", "--role", "admin", redis_url=redis_url)
    assert result.returncode == 1
    assert "unknown tenant" in result.stderr


def test_check_reports_unreachable_redis() -> None:
    """check exits non-zero with a clear message when Redis is not there."""
    server = EmbeddedRedis(appendonly=False)  # reserve a free port, never started
    result = run_cli("check", redis_url=server.url, PUSHGATE_SECRET_KEY=TEST_SECRET_KEY)
    server.close()
    assert result.returncode == 3
    assert "cannot reach Redis" in result.stderr


async def test_check_succeeds_against_a_live_server(redis_url: str) -> None:
    """check validates settings and reaches Redis."""
    result = run_cli("check", redis_url=redis_url, PUSHGATE_SECRET_KEY=TEST_SECRET_KEY)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["ok"] is True


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"PUSHGATE_PORT": "eighty"}, "PUSHGATE_PORT"),
        ({"PUSHGATE_SECRET_KEY": "too-short"}, "PUSHGATE_SECRET_KEY"),
        ({"PUSHGATE_REDIS_URL": "http://nope"}, "PUSHGATE_REDIS_URL"),
        ({"PUSHGATE_LOG_FORMAT": "xml"}, "PUSHGATE_LOG_FORMAT"),
    ],
)
def test_bad_settings_are_named_in_the_error(env: dict[str, str], named: str) -> None:
    """Invalid settings stop the command with a message naming the variable."""
    result = run_cli("check", redis_url=None, **env)
    assert result.returncode == 2
    assert named in result.stderr


def test_serve_refuses_to_start_without_secret_key() -> None:
    """serve needs PUSHGATE_SECRET_KEY; it says so and exits 2."""
    result = run_cli("serve", redis_url="redis://127.0.0.1:1/0")
    assert result.returncode == 2
    assert "PUSHGATE_SECRET_KEY" in result.stderr


def _files(tmp_path: Path) -> dict[str, str]:
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("not a key")
    return {"garbage": str(garbage), "missing": str(tmp_path / "nonexistent.p8")}


REFUSED = [
    ({"PUSHGATE_SECRET_KEY": ""}, "PUSHGATE_SECRET_KEY"),
    ({"PUSHGATE_PUBLIC_URL": "notaurl"}, "PUSHGATE_PUBLIC_URL"),
    ({"PUSHGATE_APNS_KEY_FILE": "{missing}"}, "PUSHGATE_APNS_KEY_FILE"),
    ({"PUSHGATE_APNS_KEY_FILE": "{garbage}"}, "PUSHGATE_APNS_KEY_FILE"),
    ({"PUSHGATE_FCM_CREDENTIALS_FILE": "{garbage}"}, "PUSHGATE_FCM_CREDENTIALS_FILE"),
    ({"PUSHGATE_APNS_CA_FILE": "{missing}"}, "PUSHGATE_APNS_CA_FILE"),
    ({"PUSHGATE_FCM_ENDPOINT": "fcm.local"}, "PUSHGATE_FCM_ENDPOINT"),
    ({"PUSHGATE_WEBAUTHN_ORIGINS": "https://evil.example"}, "PUSHGATE_WEBAUTHN_RP_ID"),
    ({"PUSHGATE_WEBHOOK_ALLOW_NETWORKS": "10.0.0.0/33"}, "PUSHGATE_WEBHOOK_ALLOW_NETWORKS"),
    ({"PUSHGATE_HTTP_REQUEST_TIMEOUT_SECONDS": "0"}, "PUSHGATE_HTTP_REQUEST_TIMEOUT_SECONDS"),
]


@pytest.mark.parametrize(
    ("command", "env", "named"),
    [
        *(("check", env, named) for env, named in REFUSED),
        *((command, env, named) for command in ("serve", "worker") for env, named in REFUSED[:3]),
    ],
)
def test_check_worker_and_serve_refuse_what_they_cannot_run_with(
    redis_url: str, tmp_path: Path, command: str, env: dict[str, str], named: str
) -> None:
    """check fails (exit 2) wherever serve or worker would, naming the variable, and serve
    and worker refuse to start with the same message."""
    files = _files(tmp_path)
    env = {k: v.format(**files) for k, v in env.items()}
    result = run_cli(
        command, redis_url=redis_url, **{"PUSHGATE_SECRET_KEY": TEST_SECRET_KEY, **env}
    )
    assert result.returncode == 2, result.stderr
    assert named in result.stderr
    assert result.stdout == ""


def test_check_names_every_bad_variable_at_once(redis_url: str, tmp_path: Path) -> None:
    """Several problems are all reported in one run, one line each."""
    files = _files(tmp_path)
    result = run_cli(
        "check",
        redis_url=redis_url,
        PUSHGATE_APNS_KEY_FILE=files["missing"],
        PUSHGATE_FCM_CREDENTIALS_FILE=files["garbage"],
    )
    assert result.returncode == 2
    for named in (
        "PUSHGATE_SECRET_KEY",
        "PUSHGATE_APNS_KEY_FILE",
        "PUSHGATE_APNS_KEY_ID",
        "PUSHGATE_FCM_CREDENTIALS_FILE",
    ):
        assert named in result.stderr, named


@pytest.mark.parametrize("name", ["", "   ", "a\tb", "x" * 201])
def test_tenant_create_refuses_empty_or_unprintable_names(redis_url: str, name: str) -> None:
    """An empty, blank, unprintable or overlong tenant name is refused with exit 1."""
    result = run_cli("tenant", "create", name, redis_url=redis_url)
    assert result.returncode == 1
    assert "tenant name" in result.stderr
    assert result.stdout == ""


async def test_a_repeated_tenant_name_makes_a_separate_tenant_and_says_so(redis_url: str) -> None:
    """The same name twice gives two tenants; the second call says it is a separate one."""
    first = run_cli("tenant", "create", "acme", redis_url=redis_url)
    assert first.returncode == 0 and first.stderr == ""
    second = run_cli("tenant", "create", "acme", redis_url=redis_url)
    assert second.returncode == 0
    one, two = json.loads(first.stdout)["tenant_id"], json.loads(second.stdout)["tenant_id"]
    assert one != two
    assert one in second.stderr and "separate" in second.stderr
