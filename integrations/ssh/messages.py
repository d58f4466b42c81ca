"""What the person at the terminal reads: one line per outcome, never a secret."""

from __future__ import annotations

from typing import Any

from .client import Problem

PUSH_PROMPT = "Approve it on your phone, then press Enter (or type a 6-digit code): "
CODE_PROMPT = "6-digit code from your authenticator app: "
NOT_A_CODE = "That is not a 6-digit code."
CODE_REPLAYED = "That code was already used; wait for the next one."
NO_TERMINAL = "A code is needed, but this session has no terminal (connect with ssh -t)."
CANCELLED = "Sign-in cancelled."
UNREACHABLE = "The sign-in service cannot be reached; login refused."
FAIL_OPEN = (
    "The sign-in service cannot be reached; you are let in without a second factor "
    "(fail_mode = open)."
)
LOST = "The sign-in service stopped answering; login refused."
MISCONFIGURED = "Sign-in is not set up correctly on this server ({key}); login refused."
REFUSED_BY_SERVICE = "The sign-in service refused this server's request ({code}); login refused."
FOREIGN_ANSWER = "The sign-in service answered for another request; login refused."


def duration(seconds: int | None) -> str:
    """``42 s``, ``5 min`` or ``2 h``."""
    if seconds is None:
        return "a while"
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{-(-seconds // 60)} min"
    return f"{-(-seconds // 3600)} h"


def request_sent(view: dict[str, Any], app_name: str) -> str:
    """The line shown when the push went out, with the number to choose in the app."""
    devices = view.get("devices")
    where = f"your {devices} devices" if isinstance(devices, int) and devices > 1 else "your phone"
    number = view.get("number")
    if number:
        return f'Sign-in request "{app_name}" sent to {where}: enter {number} in the app.'
    return f'Sign-in request "{app_name}" sent to {where}.'


def waiting(seconds: int, can_resend: bool) -> str:
    """The line under :func:`request_sent` on a terminal."""
    resend = "press Enter to resend, " if can_resend else ""
    return f"(waiting {seconds} s; type a 6-digit code instead, {resend}Ctrl-C to cancel)"


def approved(view: dict[str, Any], device_name: str | None) -> str:
    """The welcome line."""
    if view.get("method") == "totp":
        return "Code accepted. Welcome."
    if device_name:
        return f'Approved on "{device_name}". Welcome.'
    return "Approved on your phone. Welcome."


def ended(view: dict[str, Any], ttl: int) -> str:
    """Why a request that ended without approval refuses the login."""
    status, reason = view.get("status"), view.get("reason")
    if status == "denied" and reason == "number_mismatch":
        return "The number chosen in the app did not match; login refused."
    if status == "denied":
        return "Denied on your phone; login refused."
    if status == "fraud":
        return "Reported on your phone as not you; login refused and reported."
    if status == "expired":
        return f"No answer within {ttl} s; login refused."
    if status == "cancelled":
        return "The sign-in request was cancelled; login refused."
    return f"No answer within {ttl} s; login refused."


def expired_resend(ttl: int) -> str:
    """The offer of a new request after one expired (terminal only)."""
    return f"No answer within {ttl} s. Press Enter to send a new request (Ctrl-C to stop): "


def no_device(local_user: str) -> str:
    """A user with neither a phone nor an authenticator app."""
    return f"No phone or authenticator app is set up for {local_user}; ask your administrator."


def refused_problem(problem: Problem) -> str:
    """A problem answer that refuses the login, as one line."""
    wait = duration(problem.retry_after)
    if problem.code == "push_throttled":
        return f"Too many sign-in requests; try again in {wait}."
    if problem.code == "push_blocked":
        return f"Sign-in requests are paused after a report of fraud; try again in {wait}."
    if problem.code == "user_locked":
        if "enrollment period" in problem.detail:
            return "The time to set up sign-in approval ran out; ask your administrator."
        if problem.retry_after is None:
            return "Your account is locked; ask your administrator to unlock it."
        return f"Your account is locked after too many failed codes; try again in {wait}."
    return REFUSED_BY_SERVICE.format(code=problem.code)


def code_refused(problem: Problem) -> str:
    """A typed code that was not accepted (the user may try again while attempts remain)."""
    if problem.code == "code_replayed":
        return CODE_REPLAYED
    left = problem.attempts_remaining
    if left == 0:
        return "That code is not valid, and that was the last attempt."
    if left is not None:
        return f"That code is not valid ({left} attempts left before your account locks)."
    return "That code is not valid."
