"""What one Access-Request means for pushgate: a TOTP check, a push, or the answer to a challenge.

The NAS sends the user's second factor as the RADIUS password: six digits are a TOTP code,
``push`` or nothing asks for a push. With number matching (the tenant policy decides) the
first request is answered with an Access-Challenge showing the number, and the follow-up
request carrying its ``State`` waits for the phone (or carries a TOTP code instead).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from integrations.radius.api import GatewayUnavailable, PushgateApi, Refusal
from integrations.radius.states import ChallengeStates
from pushgate.logs import get_logger

log = get_logger("pushgate.radius")

_SIX_DIGITS = re.compile(r"^[0-9]{6}$")
_USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+:=-]{0,127}$")

Outcome = Literal["accept", "reject", "challenge"]

#: Reply-Message of a Reject, by the reason pushgate gave for ending the challenge
ENDED = {
    "user_denied": "The sign-in was denied on your phone.",
    "number_mismatch": "The number entered on your phone did not match.",
    "fraud_reported": "The sign-in was reported as not yours; your security team is told.",
    "ttl": "No answer from your phone in time.",
    "portal_cancelled": "The sign-in request was cancelled.",
}
#: Reply-Message of a Reject, by the problem code the gateway answered
REFUSED = {
    "no_push_device": "No phone is set up for push: type the 6-digit code from your "
    "authenticator app as the password.",
    "user_locked": "Your account is locked after too many failed attempts.",
    "push_blocked": "Push requests are paused after a fraud report.",
    "push_throttled": "Too many sign-in requests: wait a minute, or type the 6-digit code "
    "from your authenticator app.",
    "code_invalid": "Wrong code.",
    "code_malformed": "Wrong code.",
    "code_replayed": "That code was already used: wait for the next one.",
    "challenge_expired": "The sign-in request expired: sign in again.",
    "challenge_already_decided": "The sign-in request already ended: sign in again.",
    "not_found": "No authenticator is set up for this account.",
}
UNREACHABLE = "The sign-in service is unreachable: try again shortly."
FAIL_OPEN = "Signed in without a second factor: the sign-in service is unreachable."
WRONG_FORM = (
    "Type the 6-digit code from your authenticator app, or leave the password empty "
    "(or type push) to get a push on your phone."
)
BAD_STATE = "The sign-in request is unknown or already answered: sign in again."


@dataclass(frozen=True)
class LoginRequest:
    """The parts of an Access-Request that matter, already decoded."""

    client: str
    user_name: str
    password: str | None
    state: bytes | None = None
    calling_station: str | None = None


@dataclass
class Verdict:
    """How to answer: the packet type, its Reply-Message and (for a challenge) the State."""

    outcome: Outcome
    message: str
    state: bytes | None = None
    session_timeout: int | None = None
    log: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoginPolicy:
    """Deployment choices: what the phone shows, the dedupe resource, user mapping, fail-open."""

    app_name: str = "VPN"
    resource: str = "radius"
    fail_open: bool = False
    strip_realm: bool = False
    lowercase_users: bool = False


def map_user(name: str, policy: LoginPolicy) -> str | None:
    """The pushgate user id for a RADIUS User-Name, or None if it cannot be one."""
    user = name.strip()
    if policy.strip_realm:
        user = user.rpartition("\\")[2].partition("@")[0]
    if policy.lowercase_users:
        user = user.lower()
    return user if _USER_ID.match(user) else None


def client_ip(calling_station: str | None) -> str | None:
    """The caller's IP from Calling-Station-Id, when it holds one (Wi-Fi sends a MAC)."""
    if not calling_station:
        return None
    text = calling_station.strip().strip("[]")
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _ttl_seconds(created: dict[str, Any]) -> int | None:
    """How long the push stays pending (the Session-Timeout of the Access-Challenge)."""
    try:
        start = datetime.fromisoformat(str(created["created_at"]))
        end = datetime.fromisoformat(str(created["expires_at"]))
    except (KeyError, ValueError):
        return None
    return max(1, int((end - start).total_seconds()))


def _ended(view: dict[str, Any]) -> Verdict:
    status = view.get("status")
    log = {"challenge_id": view.get("id"), "status": status, "method": view.get("method")}
    if status == "approved":
        return Verdict("accept", "Approved.", log=log)
    reason = str(view.get("reason") or ("ttl" if status == "expired" else "user_denied"))
    return Verdict("reject", ENDED.get(reason, "The sign-in was not approved."), log=log)


def _refused(refusal: Refusal) -> Verdict:
    message = REFUSED.get(refusal.code, "The sign-in was refused.")
    left = refusal.attempts_remaining
    if refusal.code in ("code_invalid", "code_malformed") and left is not None:
        message = (
            "Wrong code: no attempts left, your account is now locked."
            if left == 0
            else f"Wrong code ({left} attempt{'' if left == 1 else 's'} left)."
        )
    return Verdict("reject", message, log={"refused": refusal.code, "status_code": refusal.status})


class Logins:
    """Turns Access-Requests into verdicts through the public API."""

    def __init__(self, api: PushgateApi, states: ChallengeStates, policy: LoginPolicy) -> None:
        """Use ``api`` for every call; ``states`` issues and checks challenge States."""
        self._api = api
        self._states = states
        self._policy = policy

    async def decide(self, request: LoginRequest) -> Verdict:
        """The answer to one Access-Request (never raises for gateway trouble)."""
        user = map_user(request.user_name, self._policy)
        if user is None:
            return Verdict("reject", "Unknown user name.", log={"refused": "bad_user_name"})
        try:
            if request.state is not None:
                return await self._follow_up(request, user, request.state)
            password = request.password or ""
            if _SIX_DIGITS.match(password):
                await self._api.verify_totp(user, password)
                return Verdict("accept", "Code accepted.", log={"method": "totp"})
            if password.strip().lower() in ("", "push"):
                return await self._push(request, user)
            return Verdict("reject", WRONG_FORM, log={"refused": "bad_password_form"})
        except Refusal as refusal:
            return _refused(refusal)
        except GatewayUnavailable as exc:
            if self._policy.fail_open and request.state is None and not isinstance(exc, _WaitLost):
                return Verdict("accept", FAIL_OPEN, log={"fail_open": True, "error": str(exc)})
            return Verdict("reject", UNREACHABLE, log={"unreachable": str(exc)})

    async def _push(self, request: LoginRequest, user: str) -> Verdict:
        created = await self._api.create_challenge(
            user,
            resource=self._policy.resource,
            app_name=self._policy.app_name,
            ip=client_ip(request.calling_station),
        )
        number = created.get("number")
        if not number:  # number matching is off for this tenant: wait for the phone now
            return _ended(await self._wait(created))
        challenge_id = str(created["id"])
        state = self._states.issue(challenge_id, client=request.client, user=user)
        return Verdict(
            "challenge",
            f"Enter {number} in your authenticator app, then press OK.",
            state=state,
            session_timeout=_ttl_seconds(created),
            log={"challenge_id": challenge_id, "deduplicated": created.get("deduplicated")},
        )

    async def _wait(self, created: dict[str, Any]) -> dict[str, Any]:
        if created.get("status") != "pending":
            return created
        log.info("radius.waiting", challenge_id=created["id"])
        try:
            return await self._api.wait_for_end(str(created["id"]))
        except GatewayUnavailable as exc:  # the push went out: never fail open now
            raise _WaitLost(str(exc)) from exc

    async def _follow_up(self, request: LoginRequest, user: str, state: bytes) -> Verdict:
        challenge_id = self._states.challenge_of(state, client=request.client, user=user)
        if challenge_id is None:
            return Verdict("reject", BAD_STATE, log={"refused": "bad_state"})
        password = (request.password or "").strip()
        try:
            if _SIX_DIGITS.match(password):
                verdict = _ended(await self._api.challenge_totp(challenge_id, password))
            else:
                verdict = _ended(await self._wait({"id": challenge_id, "status": "pending"}))
        except _WaitLost as lost:
            verdict = Verdict("reject", UNREACHABLE, log={"unreachable": str(lost)})
        except Refusal as refusal:
            if refusal.code == "not_found":  # ended long ago: its record is gone
                refusal = Refusal(refusal.status, {"code": "challenge_expired"})
            verdict = _refused(refusal)
            if refusal.code in ("code_invalid", "code_malformed"):
                return verdict  # the push is still pending: the State stays usable
        self._states.mark_used(state)
        return verdict


class _WaitLost(GatewayUnavailable):
    """The gateway went away while a push was pending: fail closed whatever the setting."""
