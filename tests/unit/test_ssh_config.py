"""The SSH integration's config file: every key checked, bad ones named, loose modes refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from integrations.ssh.config import ConfigError, SshConfig, load_config

KEY = "pg_live_0123456789abcdef"


def write(tmp_path: Path, text: str, mode: int = 0o600) -> str:
    path = tmp_path / "ssh.conf"
    path.write_text(text)
    os.chmod(path, mode)
    return str(path)


def config_with(tmp_path: Path, extra: str = "", users: str = "") -> str:
    text = f"[pushgate]\nurl = https://pushgate.example.com\napi_key = {KEY}\n{extra}\n"
    if users:
        text += f"[users]\n{users}\n"
    return write(tmp_path, text)


def refused_key(path: str) -> str:
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    return refused.value.key


def test_minimal_file_gets_closed_fail_mode_and_the_documented_defaults(tmp_path: Path) -> None:
    """url and api_key are all that is needed; everything else has a safe default."""
    config = load_config(config_with(tmp_path))
    assert config == SshConfig(
        url="https://pushgate.example.com", api_key=KEY, path=str(tmp_path / "ssh.conf")
    )
    assert not config.fail_open
    assert config.http_timeout_seconds == 10 and config.answer_timeout_seconds == 90
    assert config.user_id_for("alice") == "alice"


def test_every_key_is_read(tmp_path: Path) -> None:
    """Each documented key lands in the config, user names keep their case."""
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    extra = (
        f"ca_file = {ca}\nfail_mode = OPEN\nhttp_timeout_seconds = 5\n"
        "answer_timeout_seconds = 75\nmax_code_attempts = 4\nmax_requests = 2\n"
        "exempt_groups = breakglass, ci ,\nhostname = build-01\napp_name = Login to {host}\n"
        "resource = ssh-{host}\ndefault_user_id = {user}@corp.example\n"
        "syslog_socket = /run/log.sock\n"
    )
    config = load_config(config_with(tmp_path, extra, "Alice = alice.smith\nroot = ops"))
    assert config.ca_file == str(ca)
    assert config.fail_open
    assert (config.http_timeout_seconds, config.answer_timeout_seconds) == (5, 75)
    assert (config.max_code_attempts, config.max_requests) == (4, 2)
    assert config.exempt_groups == ("breakglass", "ci")
    assert config.app_name_for("SSH", "bob") == "Login to build-01"
    assert config.resource_for("SSH", "bob") == "ssh-build-01"
    assert config.syslog_socket == "/run/log.sock"
    assert config.user_id_for("Alice") == "alice.smith"
    assert config.user_id_for("root") == "ops"
    assert config.user_id_for("bob") == "bob@corp.example"
    assert config.user_id_for("alice") == "alice@corp.example"


def test_api_key_never_shows_in_the_config_repr(tmp_path: Path) -> None:
    """Logging the config object cannot leak the portal key."""
    assert KEY not in repr(load_config(config_with(tmp_path)))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[pushgate]\napi_key = k\n", "url"),
        ("[pushgate]\nurl = https://pg.example\n", "api_key"),
        ("[pushgate]\nurl = https://pg.example\napi_key = two words\n", "api_key"),
        ("[users]\nalice = alice\n", "pushgate"),
        ("[pushgate]\nurl = https://pg.example\napi_key = k\n[groups]\n", "groups"),
        ("[pushgate]\nurl = https://pg.example\napi_key = k\nfail_mod = open\n", "fail_mod"),
        ("[pushgate]\nurl = https://pg.example\napi_key = k\nurl = https://x\n", "url"),
        ("url = https://pg.example\n", "file"),
    ],
)
def test_missing_unknown_or_repeated_keys_are_named(tmp_path: Path, text: str, key: str) -> None:
    """A typo, a missing key or a key given twice is refused with its name."""
    assert refused_key(write(tmp_path, text)) == key


@pytest.mark.parametrize(
    "url",
    [
        "http://pushgate.example.com",
        "ftp://pushgate.example.com",
        "https://user:pw@pushgate.example.com",
        "https://pushgate.example.com/?x=1",
        "https://pushgate.example.com:99999",
        "pushgate.example.com",
    ],
)
def test_urls_that_would_leak_the_key_or_cannot_work_are_refused(tmp_path: Path, url: str) -> None:
    """Plain http to another host, credentials, queries, bad ports and bare names are refused."""
    path = write(tmp_path, f"[pushgate]\nurl = {url}\napi_key = {KEY}\n")
    assert refused_key(path) == "url"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://[::1]:8080", "http://localhost"])
def test_plain_http_is_allowed_to_loopback_only(tmp_path: Path, url: str) -> None:
    """A gateway on the same machine may be reached without TLS."""
    path = write(tmp_path, f"[pushgate]\nurl = {url}/\napi_key = {KEY}\n")
    assert load_config(path).url == url


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("fail_mode = sometimes", "fail_mode"),
        ("http_timeout_seconds = ten", "http_timeout_seconds"),
        ("http_timeout_seconds = 0", "http_timeout_seconds"),
        ("answer_timeout_seconds = 9999", "answer_timeout_seconds"),
        ("max_code_attempts = 11", "max_code_attempts"),
        ("max_requests = 0", "max_requests"),
        ("ca_file = /nonexistent/ca.pem", "ca_file"),
        ("app_name = {host} {nope}", "app_name"),
        ("resource = {host", "resource"),
        ("default_user_id =", "default_user_id"),
        ("hostname = build 01", "hostname"),
        ("syslog_socket = dev/log", "syslog_socket"),
    ],
)
def test_bad_values_are_refused_naming_the_key(tmp_path: Path, extra: str, key: str) -> None:
    """Every bounded or enumerated key rejects what it cannot use."""
    assert refused_key(config_with(tmp_path, extra)) == key


def test_a_mapped_id_pushgate_would_reject_is_refused(tmp_path: Path) -> None:
    """``[users]`` values follow pushgate's user id rule; the bad entry is named."""
    assert refused_key(config_with(tmp_path, users="alice = alice smith")) == "users.alice"


def test_a_default_id_pushgate_would_reject_names_default_user_id(tmp_path: Path) -> None:
    """A local name the default template turns into an invalid id must be mapped."""
    config = load_config(config_with(tmp_path))
    with pytest.raises(ConfigError) as refused:
        config.user_id_for("_apt")
    assert refused.value.key == "default_user_id"


def test_resource_is_made_a_valid_identifier(tmp_path: Path) -> None:
    """Whatever the hostname template gives, the resource id is one pushgate accepts."""
    config = load_config(config_with(tmp_path, "resource = {service} on {host}\nhostname = h1"))
    assert config.resource_for("sudo", "alice") == "sudo-on-h1"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_a_file_others_may_read_or_write_is_refused(tmp_path: Path, mode: int) -> None:
    """Any group or other permission on the file refuses it (the key would be exposed)."""
    path = config_with(tmp_path)
    os.chmod(path, mode)
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert refused.value.key == "file"
    assert f"{mode:04o}" in refused.value.message and "chmod 600" in refused.value.message


def test_a_missing_file_or_a_directory_is_refused(tmp_path: Path) -> None:
    """No file, or not a regular file: refused, naming the file."""
    assert refused_key(str(tmp_path / "absent.conf")) == "file"
    os.chmod(tmp_path, 0o700)
    assert refused_key(str(tmp_path)) == "file"


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_a_file_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    """Only root (or the user running the check) may own the file: others could edit it."""
    path = config_with(tmp_path)
    os.chown(path, 65534, 65534)
    assert refused_key(path) == "file"
