"""What the dialogue needs from a terminal, and the wait for the phone's answer.

A :class:`Conversation` is the PAM conversation (one prompt at a time) or the ForceCommand's
tty (phone and keyboard watched together); both answer with a :data:`Reply`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from .client import Gateway, GatewayUnreachable, PendingCall

RETRY_SECONDS = 1.0  # pause after a failed long poll before the next one


@dataclass(frozen=True)
class Typed:
    """The user typed a line (empty for just Enter)."""

    text: str


@dataclass(frozen=True)
class Ended:
    """Waiting stopped: the challenge view (``pending`` when the wait ran out)."""

    view: dict[str, Any]


@dataclass(frozen=True)
class HungUp:
    """The user went away (end of input, interrupted, conversation failed)."""


Reply = Typed | Ended | HungUp


class Waiting:
    """The phone's answer being waited for: long polls until it ends or the deadline passes."""

    def __init__(self, gateway: Gateway, challenge_id: str, deadline: float) -> None:
        self.gateway = gateway
        self.challenge_id = challenge_id
        self.deadline = deadline
        self.last: dict[str, Any] = {"id": challenge_id, "status": "pending"}

    def seconds_left(self) -> float:
        """Seconds until this login stops waiting."""
        return max(0.0, self.deadline - time.monotonic())

    def start(self) -> PendingCall:
        """Send one long poll."""
        return self.gateway.start_wait(self.challenge_id, self.seconds_left())

    def finish(self, call: PendingCall) -> dict[str, Any] | None:
        """Read a long poll's answer: the view once ended, None while pending."""
        self.last = call.result()
        return None if self.last.get("status") == "pending" else self.last

    def block(self) -> dict[str, Any]:
        """Long poll until the challenge ends or the deadline (a blip is retried meanwhile)."""
        failure: GatewayUnreachable | None = None
        while self.seconds_left() > 0:
            try:
                view = self.finish(self.start())
            except GatewayUnreachable as exc:
                failure = exc
                time.sleep(min(RETRY_SECONDS, self.seconds_left()))
                continue
            failure = None
            if view is not None:
                return view
        if failure is not None:
            raise failure
        return self.last


class Conversation(Protocol):
    """The terminal side of the dialogue."""

    can_type: bool
    can_resend: bool

    def say(self, text: str) -> None:
        """Show an informational line."""

    def warn(self, text: str) -> None:
        """Show an error line."""

    def wait_or_code(self, waiting: Waiting, seconds: int) -> Reply:
        """Wait for the phone, or take a typed code."""

    def code(self) -> Reply:
        """Ask for a code only."""

    def resend(self, text: str) -> bool:
        """Offer a new request after one expired; True when the user wants it."""
