"""Pieces of the SSH sign-in dialogue that need no gateway: the request context, the lines and
Ctrl-C."""

from __future__ import annotations

import io
import signal
from typing import cast

import pytest

from integrations.ssh import messages
from integrations.ssh.authlog import Syslog
from integrations.ssh.client import Gateway, Problem
from integrations.ssh.config import SshConfig
from integrations.ssh.dialogue import Dialogue, Login, Verdict, request_context
from integrations.ssh.forcecommand import _interrupt_once
from integrations.ssh.terminal import StreamConversation


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


class _GatewayThatCreates:
    """Creates one challenge and records cancellations."""

    def __init__(self) -> None:
        self.cancelled: list[str] = []

    def create_challenge(self, *_: object) -> dict[str, object]:
        return {
            "id": "ch1",
            "number": "47",
            "devices": 1,
            "created_at": "2026-11-30T06:00:00Z",
            "expires_at": "2026-11-30T06:01:00Z",
        }

    def cancel(self, challenge_id: str) -> None:
        self.cancelled.append(challenge_id)


class _CtrlCOnTheRequestLine(StreamConversation):
    """Ctrl-C arrives while the request line is being written, before the wait begins."""

    def say(self, text: str) -> None:
        if text.startswith("Sign-in request"):
            raise KeyboardInterrupt
        super().say(text)


def test_ctrl_c_outside_the_wait_still_cancels_the_request() -> None:
    """Wherever Ctrl-C lands once the request exists, the request is cancelled on pushgate."""
    gateway = _GatewayThatCreates()
    terminal = io.StringIO()
    conversation = _CtrlCOnTheRequestLine(terminal)
    dialogue = Dialogue(
        SshConfig(url="https://pushgate.test", api_key="k"),
        cast(Gateway, gateway),
        conversation,
        Syslog("/nonexistent/log"),
        Login(local_user="alice", service="SSH"),
    )
    assert dialogue.run() == Verdict(False, "cancelled")
    assert gateway.cancelled == ["ch1"]
    assert messages.CANCELLED in terminal.getvalue()


def test_only_the_first_ctrl_c_interrupts_the_forcecommand_check() -> None:
    """A second Ctrl-C (sudo relays the terminal's too) cannot cut the cancellation short."""
    previous = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(KeyboardInterrupt):
            _interrupt_once(signal.SIGINT, None)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
