"""The RADIUS server's own rules: settings, client table, user mapping, States, duplicates."""

from __future__ import annotations

from pathlib import Path

import pytest

from integrations.radius.duplicates import Duplicates
from integrations.radius.logins import LoginPolicy, client_ip, map_user
from integrations.radius.server import ClientTable
from integrations.radius.settings import load_radius_settings, parse_clients
from integrations.radius.states import ChallengeStates
from pushgate.settings import SettingsError

SECRET = "s" * 16
KEY = "pg_live_" + "k" * 43
GOOD = {"api_url": "http://gateway:8080/", "api_key": KEY, "clients": f"10.0.0.0/8={SECRET}"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No PUSHGATE_* variable or .env file of the machine leaks into these settings."""
    import os

    for name in list(os.environ):
        if name.startswith("PUSHGATE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_settings_defaults_match_the_documented_ones() -> None:
    """0.0.0.0:1812, app name VPN, resource radius, fail closed; the URL loses its slash."""
    settings = load_radius_settings(**GOOD)
    assert (settings.host, settings.port) == ("0.0.0.0", 1812)  # noqa: S104
    assert (settings.app_name, settings.resource, settings.fail_open) == ("VPN", "radius", False)
    assert settings.api_url == "http://gateway:8080"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """PUSHGATE_RADIUS_* variables are read, and PUSHGATE_LOG_LEVEL is shared with the rest."""
    monkeypatch.setenv("PUSHGATE_RADIUS_API_URL", "https://pushgate.example.com")
    monkeypatch.setenv("PUSHGATE_RADIUS_API_KEY", KEY)
    monkeypatch.setenv("PUSHGATE_RADIUS_CLIENTS", f"192.0.2.10={SECRET}")
    monkeypatch.setenv("PUSHGATE_RADIUS_PORT", "11812")
    monkeypatch.setenv("PUSHGATE_RADIUS_FAIL_OPEN", "true")
    monkeypatch.setenv("PUSHGATE_LOG_LEVEL", "WARNING")
    settings = load_radius_settings()
    assert (settings.port, settings.fail_open, settings.log_level) == (11812, True, "warning")
    assert settings.api_key.get_secret_value() == KEY
    assert KEY not in repr(settings)


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("api_url", "gateway:8080", "PUSHGATE_RADIUS_API_URL"),
        ("api_key", "hunter2", "PUSHGATE_RADIUS_API_KEY"),
        ("host", "vpn.example.com", "PUSHGATE_RADIUS_HOST"),
        ("port", 70000, "PUSHGATE_RADIUS_PORT"),
        ("clients", "", "PUSHGATE_RADIUS_CLIENTS"),
        ("clients", "10.0.0.0/8", "PUSHGATE_RADIUS_CLIENTS"),
        ("clients", f"vpn.example.com={SECRET}", "PUSHGATE_RADIUS_CLIENTS"),
        ("clients", "10.1.2.3=short", "PUSHGATE_RADIUS_CLIENTS"),
        ("app_name", "", "PUSHGATE_RADIUS_APP_NAME"),
        ("resource", "my vpn", "PUSHGATE_RADIUS_RESOURCE"),
        ("api_ca_file", "/nonexistent/ca.pem", "PUSHGATE_RADIUS_API_CA_FILE"),
        ("log_level", "loud", "PUSHGATE_LOG_LEVEL"),
    ],
)
def test_bad_setting_is_refused_naming_its_variable(field: str, value: object, named: str) -> None:
    """Each bad value stops the start with a message naming the variable."""
    with pytest.raises(SettingsError, match=named):
        load_radius_settings(**{**GOOD, field: value})


def test_missing_required_settings_are_all_named() -> None:
    """Without URL, key and clients, the message names all three as required."""
    with pytest.raises(SettingsError) as caught:
        load_radius_settings()
    for name in ("API_URL", "API_KEY", "CLIENTS"):
        assert f"PUSHGATE_RADIUS_{name}: is required" in str(caught.value)


def test_client_list_parses_addresses_networks_and_secrets_with_equals_signs() -> None:
    """Single addresses, CIDRs and IPv6 parse; a secret may contain '='; duplicates are refused."""
    clients = parse_clients(f" 192.0.2.10={SECRET}=x , 10.0.0.0/8={SECRET},2001:db8::/32={SECRET}")
    assert [c.name for c in clients] == ["192.0.2.10", "10.0.0.0/8", "2001:db8::/32"]
    assert clients[0].secret == f"{SECRET}=x".encode()
    with pytest.raises(ValueError, match="twice"):
        parse_clients(f"10.0.0.0/8={SECRET},10.0.0.0/8={SECRET}")


def test_client_table_prefers_the_most_specific_network_and_maps_ipv4_in_ipv6() -> None:
    """A /32 inside a /8 wins for its address; ::ffff:10.1.2.3 is 10.1.2.3; others are unknown."""
    table = ClientTable(parse_clients(f"10.0.0.0/8={SECRET},10.1.2.3={'t' * 16}"))
    assert table.lookup("10.1.2.3").secret == b"t" * 16  # type: ignore[union-attr]
    assert table.lookup("::ffff:10.1.2.3").secret == b"t" * 16  # type: ignore[union-attr]
    assert table.lookup("10.9.9.9").secret == SECRET.encode()  # type: ignore[union-attr]
    assert table.lookup("192.0.2.1") is None
    assert table.lookup("not-an-address") is None


def test_user_names_map_to_pushgate_ids_as_configured() -> None:
    """Realms and domains are stripped and case folded only when asked; bad ids map to None."""
    plain, mapped = LoginPolicy(), LoginPolicy(strip_realm=True, lowercase_users=True)
    assert map_user("Alice@corp.example", plain) == "Alice@corp.example"
    assert map_user("Alice@corp.example", mapped) == "alice"
    assert map_user("CORP\\Alice", mapped) == "alice"
    assert map_user("", plain) is None
    assert map_user("a b", plain) is None


def test_calling_station_id_counts_as_an_ip_only_when_it_is_one() -> None:
    """VPNs send the caller's IP; Wi-Fi controllers send a MAC address, which is left out."""
    assert client_ip("203.0.113.9") == "203.0.113.9"
    assert client_ip("[2001:db8::1]") == "2001:db8::1"
    assert client_ip("AA-BB-CC-DD-EE-FF") is None
    assert client_ip(None) is None


def test_state_names_its_challenge_only_for_the_same_client_and_user_and_only_once() -> None:
    """A State reads back for its NAS and user; another user, NAS or key, a forged tag and a
    used State all read as None."""
    states = ChallengeStates(KEY)
    state = states.issue("ch0001abcdefghijklmnopqr", client="10.0.0.0/8", user="alice")
    assert states.challenge_of(state, client="10.0.0.0/8", user="alice") == (
        "ch0001abcdefghijklmnopqr"
    )
    assert states.challenge_of(state, client="10.0.0.0/8", user="bob") is None
    assert states.challenge_of(state, client="192.0.2.1", user="alice") is None
    assert ChallengeStates(KEY + "x").challenge_of(state, client="10.0.0.0/8", user="alice") is None
    forged = state[:-1] + (b"0" if state[-1:] != b"0" else b"1")
    assert states.challenge_of(forged, client="10.0.0.0/8", user="alice") is None
    assert states.challenge_of(b"garbage", client="10.0.0.0/8", user="alice") is None
    states.mark_used(state)
    assert states.challenge_of(state, client="10.0.0.0/8", user="alice") is None


def test_duplicates_are_dropped_while_answering_then_get_the_cached_reply() -> None:
    """new -> in_progress for copies -> the same reply bytes after finishing; abandon forgets."""
    duplicates = Duplicates(keep_seconds=60)
    key = ("10.1.2.3", 7, b"a" * 16)
    assert duplicates.begin(key) == "new"
    assert duplicates.begin(key) == "in_progress"
    duplicates.finish(key, b"reply")
    assert duplicates.begin(key) == b"reply"
    other = ("10.1.2.3", 7, b"b" * 16)
    assert duplicates.begin(other) == "new"
    duplicates.abandon(other)
    assert duplicates.begin(other) == "new"


def test_duplicate_cache_forgets_old_replies_and_stays_bounded() -> None:
    """Replies expire after keep_seconds, and no more than max_answered are kept."""
    expired = Duplicates(keep_seconds=0)
    key = ("10.1.2.3", 1, b"a" * 16)
    expired.begin(key)
    expired.finish(key, b"reply")
    assert expired.begin(key) == "new"
    bounded = Duplicates(keep_seconds=60, max_answered=3)
    for n in range(5):
        bounded.begin(("10.1.2.3", n, b"a" * 16))
        bounded.finish(("10.1.2.3", n, b"a" * 16), b"reply")
    assert bounded.begin(("10.1.2.3", 0, b"a" * 16)) == "new"
    assert bounded.begin(("10.1.2.3", 4, b"a" * 16)) == b"reply"
