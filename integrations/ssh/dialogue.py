"""The sign-in dialogue shared by the PAM module and the ForceCommand.

It creates a challenge for the login, shows the number, waits for the phone (long poll) or
takes a typed code, and says yes only for an approved challenge of this very user. The
terminal side is a :class:`~.conversation.Conversation`: the PAM conversation, or the
ForceCommand's tty.
"""

from __future__ import annotations

import calendar
import grp
import ipaddress
import os
import pwd
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from . import messages as say
from .authlog import Syslog
from .client import Gateway, GatewayUnreachable, Problem
from .config import ConfigError, SshConfig
from .conversation import Conversation, Ended, HungUp, Typed, Waiting

_CODE = re.compile(r"[0-9]{6}")
_MAX_TURNS = 100  # answers one dialogue may take, whatever the user types


@dataclass(frozen=True)
class Login:
    """Who is signing in, from where, through which service (``SSH``, ``sudo`` ...)."""

    local_user: str
    service: str
    remote_ip: str | None = None


@dataclass(frozen=True)
class Verdict:
    """The answer: ``allowed`` and a one-word ``outcome`` for logs and exit codes."""

    allowed: bool
    outcome: str


def exempt_group(user: str, groups: tuple[str, ...]) -> str | None:
    """The first of ``groups`` the local ``user`` belongs to, or None."""
    if not groups:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None
    for gid in os.getgrouplist(user, entry.pw_gid):
        try:
            name = grp.getgrgid(gid).gr_name
        except KeyError:
            continue
        if name in groups:
            return name
    return None


def request_context(remote_host: str | None) -> dict[str, str]:
    """``context`` of the challenge: the client's address as ``ip``; a name (sshd with
    ``UseDNS yes`` puts one in ``PAM_RHOST``) goes to ``location`` so the phone still shows it."""
    if not remote_host:
        return {}
    try:
        return {"ip": str(ipaddress.ip_address(remote_host.split("%")[0]))}
    except ValueError:
        return {"location": remote_host[:200]}


def _ttl(view: dict[str, Any]) -> int:
    """Seconds between ``created_at`` and ``expires_at`` (the server's clock, not ours)."""
    try:
        return max(1, round(_epoch(view["expires_at"]) - _epoch(view["created_at"])))
    except (KeyError, TypeError, ValueError):
        return 60


def _epoch(stamp: str) -> float:
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return seconds + (float("0." + fraction) if fraction else 0.0)


class Dialogue:
    """One login's conversation with pushgate."""

    def __init__(
        self,
        config: SshConfig,
        gateway: Gateway,
        conversation: Conversation,
        log: Syslog,
        login: Login,
    ) -> None:
        self.config = config
        self.gateway = gateway
        self.conv = conversation
        self.log = log
        self.login = login
        self.user_id = "-"

    def run(self) -> Verdict:
        """Decide the login: exempt, approved (push or code), or refused with one line."""
        login = self.login
        group = exempt_group(login.local_user, self.config.exempt_groups)
        if group is not None:
            return self._outcome(True, "exempt", f"member of exempt group {group}")
        try:
            self.user_id = self.config.user_id_for(login.local_user)
        except ConfigError as exc:
            self.conv.warn(say.MISCONFIGURED.format(key=exc.key))
            return self._outcome(False, "config_error", str(exc))
        try:
            return self._push()
        except Problem as problem:
            self.conv.warn(say.REFUSED_BY_SERVICE.format(code=problem.code))
            return self._outcome(False, "service_refused", str(problem))

    def _outcome(self, allowed: bool, outcome: str, detail: str = "") -> Verdict:
        login = self.login
        who = f"{login.local_user} (pushgate user {self.user_id})"
        where = f"from {login.remote_ip or 'local'} via {login.service}"
        line = f"{'allowed' if allowed else 'refused'} {who} {where}: {outcome}"
        self.log.info(f"{line}; {detail}" if detail else line)
        return Verdict(allowed, outcome)

    def _push(self) -> Verdict:
        rounds = self.config.max_requests if self.conv.can_resend else 1
        for sent in range(1, rounds + 1):
            try:
                created = self.gateway.create_challenge(
                    self.user_id,
                    f"{self.config.resource_for(self.login.service, self.login.local_user)}"
                    f":{secrets.token_hex(4)}",
                    self.config.app_name_for(self.login.service, self.login.local_user),
                    request_context(self.login.remote_ip),
                )
            except GatewayUnreachable as exc:
                if sent == 1:
                    return self._unreachable(exc)
                self.conv.warn(say.LOST)
                return self._outcome(False, "unreachable", str(exc))
            except Problem as problem:
                return self._cannot_push(problem)
            verdict = self._await(created, more_requests=sent < rounds)
            if verdict is not None:
                return verdict
        raise AssertionError("unreachable: the last round always decides")  # pragma: no cover

    def _unreachable(self, exc: GatewayUnreachable) -> Verdict:
        if self.config.fail_open:
            self.log.alert(
                f"FAIL OPEN: {self.login.local_user} from {self.login.remote_ip or 'local'} via "
                f"{self.login.service} let in WITHOUT a second factor: pushgate at "
                f"{self.config.url} unreachable ({exc})"
            )
            self.conv.warn(say.FAIL_OPEN)
            return Verdict(True, "fail_open")
        self.conv.warn(say.UNREACHABLE)
        return self._outcome(False, "unreachable", f"{self.config.url}: {exc}; fail_mode closed")

    def _cannot_push(self, problem: Problem) -> Verdict:
        """No push was sent: offer a code when the user has one, else refuse."""
        if problem.code == "no_push_device":
            return self._code_only(None)
        if problem.code in ("push_throttled", "push_blocked"):
            return self._code_only(say.refused_problem(problem))
        if problem.code == "user_locked":
            self.conv.warn(say.refused_problem(problem))
            return self._outcome(False, "locked", problem.detail)
        raise problem

    def _await(self, created: dict[str, Any], *, more_requests: bool) -> Verdict | None:
        """Wait for the phone or a code; None asks for a new request."""
        challenge_id = str(created.get("id"))
        ttl = _ttl(created)
        deadline = time.monotonic() + min(ttl + 5, self.config.answer_timeout_seconds)
        waiting = Waiting(self.gateway, challenge_id, deadline)
        app_name = str(created.get("app_name") or "")
        try:
            self.conv.say(say.request_sent(created, app_name))
            return self._turns(challenge_id, waiting, ttl, more_requests=more_requests)
        except KeyboardInterrupt:  # Ctrl-C wherever it lands (a line, an HTTP call) cancels
            self.gateway.cancel(challenge_id)
            self.conv.warn(say.CANCELLED)
            return self._outcome(False, "cancelled", challenge_id)

    def _turns(
        self, challenge_id: str, waiting: Waiting, ttl: int, *, more_requests: bool
    ) -> Verdict | None:
        """The user's turns at the waiting line: the phone's answer, typed codes, Enter."""
        tries = 0
        for _ in range(_MAX_TURNS):
            try:
                reply = self.conv.wait_or_code(waiting, min(ttl, round(waiting.seconds_left())))
            except GatewayUnreachable as exc:
                self.gateway.cancel(challenge_id)
                self.conv.warn(say.LOST)
                return self._outcome(False, "unreachable", f"{challenge_id}: {exc}")
            if isinstance(reply, HungUp):
                self.gateway.cancel(challenge_id)
                self.conv.warn(say.CANCELLED)
                return self._outcome(False, "cancelled", challenge_id)
            if isinstance(reply, Ended):
                expired = reply.view.get("status") == "expired"
                if expired and more_requests and self.conv.resend(say.expired_resend(ttl)):
                    return None
                return self._ended(challenge_id, reply.view, ttl)
            text = reply.text.strip()
            if not text:
                if more_requests and self.conv.can_resend:
                    self.gateway.cancel(challenge_id)
                    return None
                continue
            tries += 1
            verdict = self._challenge_code(challenge_id, text, ttl, last=tries >= self._tries)
            if verdict is not None:
                return verdict
        self.gateway.cancel(challenge_id)
        return self._outcome(False, "cancelled", "too many answers")

    @property
    def _tries(self) -> int:
        return self.config.max_code_attempts

    def _challenge_code(
        self, challenge_id: str, code: str, ttl: int, *, last: bool
    ) -> Verdict | None:
        """Send a typed code for the challenge; None lets the user try again."""
        if not _CODE.fullmatch(code):
            self.conv.warn(say.NOT_A_CODE)
            return self._give_up(challenge_id) if last else None
        try:
            view = self.gateway.challenge_code(challenge_id, code)
        except GatewayUnreachable as exc:
            self.gateway.cancel(challenge_id)
            self.conv.warn(say.LOST)
            return self._outcome(False, "unreachable", f"{challenge_id}: {exc}")
        except Problem as problem:
            if problem.code in ("challenge_expired", "challenge_already_decided"):
                return self._ended(challenge_id, self.gateway.challenge(challenge_id), ttl)
            if problem.code == "user_locked":
                self.gateway.cancel(challenge_id)
                self.conv.warn(say.refused_problem(problem))
                return self._outcome(False, "locked", challenge_id)
            if problem.code not in ("code_invalid", "code_malformed", "code_replayed"):
                raise
            self.conv.warn(say.code_refused(problem))
            if last or problem.attempts_remaining == 0:
                return self._give_up(challenge_id, problem.code)
            return None
        return self._ended(challenge_id, view, ttl)

    def _give_up(self, challenge_id: str, why: str = "not_a_code") -> Verdict:
        self.gateway.cancel(challenge_id)
        self.conv.warn("Too many wrong codes; login refused.")
        return self._outcome(False, "code_refused", f"{challenge_id}: {why}")

    def _ended(self, challenge_id: str, view: dict[str, Any], ttl: int) -> Verdict:
        """Allow only an approved challenge with this id for this user."""
        status = view.get("status")
        if view.get("id") != challenge_id or view.get("user_id") != self.user_id:
            self.gateway.cancel(challenge_id)
            self.conv.warn(say.FOREIGN_ANSWER)
            return self._outcome(False, "foreign_answer", challenge_id)
        if status == "approved":
            device_id = view.get("device_id")
            name = None
            if view.get("method") != "totp" and isinstance(device_id, str):
                name = self.gateway.device_name(self.user_id, device_id)
            self.conv.say(say.approved(view, name))
            method = view.get("method") or "push"
            return self._outcome(True, "approved", f"{challenge_id} by {method}")
        if status == "pending":
            self.gateway.cancel(challenge_id)
        self.conv.warn(say.ended(view, ttl))
        reason = view.get("reason")
        outcome = "timeout" if status == "pending" else str(status)
        return self._outcome(False, outcome, f"{challenge_id}" + (f" ({reason})" if reason else ""))

    def _code_only(self, why: str | None) -> Verdict:
        """No push: a TOTP code from the user's authenticator app, when they have one."""
        try:
            user = self.gateway.user(self.user_id)
        except GatewayUnreachable as exc:
            self.conv.warn(say.LOST)
            return self._outcome(False, "unreachable", str(exc))
        if why is not None:
            self.conv.warn(why)
        if why is None and user is not None and user.get("mfa_required") is False:
            return self._outcome(True, "not_required", "no device and no second factor required")
        mfa = (user or {}).get("mfa") or {}
        if user is None or mfa.get("totp") != "active":
            if why is None:
                self.conv.warn(say.no_device(self.login.local_user))
            return self._outcome(False, "no_device" if why is None else "throttled")
        if not self.conv.can_type:
            self.conv.warn(say.NO_TERMINAL)
            return self._outcome(False, "no_terminal")
        for tries in range(1, self._tries + 1):
            reply = self.conv.code()
            if not isinstance(reply, Typed):
                self.conv.warn(say.CANCELLED)
                return self._outcome(False, "cancelled")
            verdict = self._user_code(reply.text.strip(), last=tries >= self._tries)
            if verdict is not None:
                return verdict
        return self._outcome(False, "code_refused")  # pragma: no cover (the last try decides)

    def _user_code(self, code: str, *, last: bool) -> Verdict | None:
        if not _CODE.fullmatch(code):
            self.conv.warn(say.NOT_A_CODE)
        else:
            try:
                self.gateway.verify_code(self.user_id, code)
            except GatewayUnreachable as exc:
                self.conv.warn(say.LOST)
                return self._outcome(False, "unreachable", str(exc))
            except Problem as problem:
                if problem.code == "user_locked":
                    self.conv.warn(say.refused_problem(problem))
                    return self._outcome(False, "locked")
                if problem.code not in ("code_invalid", "code_malformed", "code_replayed"):
                    raise
                self.conv.warn(say.code_refused(problem))
                if problem.attempts_remaining == 0:
                    last = True
            else:
                self.conv.say("Code accepted. Welcome.")
                return self._outcome(True, "approved", "code without push")
        if last:
            self.conv.warn("Too many wrong codes; login refused.")
            return self._outcome(False, "code_refused")
        return None
