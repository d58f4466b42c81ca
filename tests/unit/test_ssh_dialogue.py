"""Pieces of the SSH sign-in dialogue that need no gateway: the request context and the lines."""

from __future__ import annotations

import pytest

from integrations.ssh import messages
from integrations.ssh.client import Problem
from integrations.ssh.dialogue import request_context


@pytest.mark.parametrize(
    ("remote", "context"),
    [
        ("203.0.113.9", {"ip": "203.0.113.9"}),
        ("2001:db8::1", {"ip": "2001:db8::1"}),
        ("fe80::1%eth0", {"ip": "fe80::1"}),
        ("ws-17.corp.example", {"location": "ws-17.corp.example"}),
        (None, {}),
    ],
)
def test_the_remote_host_becomes_the_ip_or_when_a_name_the_location(
    remote: str | None, context: dict[str, str]
) -> None:
    """PAM_RHOST is an address unless sshd resolved it (UseDNS): names go to ``location``."""
    assert request_context(remote) == context


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "a while"), (42, "42 s"), (119, "119 s"), (600, "10 min"), (3601, "61 min"),
     (7200, "2 h")],
)  # fmt: skip
def test_waits_read_as_seconds_minutes_or_hours(seconds: int | None, text: str) -> None:
    """Retry-After values are shown in the unit a person would use."""
    assert messages.duration(seconds) == text


def test_the_request_line_names_the_app_the_devices_and_the_number() -> None:
    """The number is shown when number matching is on; several devices are counted."""
    one = messages.request_sent({"number": "47", "devices": 1}, "SSH on build-01")
    assert one == 'Sign-in request "SSH on build-01" sent to your phone: enter 47 in the app.'
    many = messages.request_sent({"number": None, "devices": 2}, "sudo on db-1")
    assert many == 'Sign-in request "sudo on db-1" sent to your 2 devices.'


@pytest.mark.parametrize(
    ("body", "retry_after", "line"),
    [
        ({"code": "code_invalid", "attempts_remaining": 3}, None, "(3 attempts left"),
        ({"code": "code_invalid", "attempts_remaining": 0}, None, "that was the last attempt"),
        ({"code": "code_replayed"}, None, "already used"),
    ],
)
def test_a_refused_code_says_why_and_how_many_tries_are_left(
    body: dict[str, object], retry_after: int | None, line: str
) -> None:
    """Wrong and replayed codes get distinct lines; the last attempt is announced."""
    assert line in messages.code_refused(Problem(422, body, retry_after))


def test_a_lock_without_an_end_asks_for_the_administrator() -> None:
    """A lock with no Retry-After (lockout_seconds = 0) lasts until an admin unlocks."""
    locked = Problem(423, {"code": "user_locked", "detail": "the user is locked"}, None)
    assert messages.refused_problem(locked) == (
        "Your account is locked; ask your administrator to unlock it."
    )
    ended = Problem(423, {"code": "user_locked", "detail": "the enrollment period ended"}, None)
    assert "ran out" in messages.refused_problem(ended)
