"""The dialogue on the ForceCommand's terminal: wait for the phone while reading typed lines.

With a tty, the phone's answer (a long poll) and the keyboard are watched together with
``select``: the login goes on as soon as the phone approves, a typed code is sent at once,
Enter alone sends a new request. Without a tty (``ssh host command``) the input belongs to
the command, so nothing is read: messages go to stderr and only the phone can approve.
"""

from __future__ import annotations

import os
import select
import sys
import time
from typing import TextIO

from . import messages as say
from .client import GatewayUnreachable, PendingCall
from .conversation import RETRY_SECONDS, Ended, HungUp, Reply, Typed, Waiting


class StreamConversation:
    """No terminal: messages on ``out`` (stderr), the phone is the only way to approve."""

    can_type = False
    can_resend = False

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def say(self, text: str) -> None:
        """Write a line."""
        self.out.write(text + "\n")
        self.out.flush()

    def warn(self, text: str) -> None:
        """Write a line."""
        self.say(text)

    def wait_or_code(self, waiting: Waiting, seconds: int) -> Reply:
        """Wait for the phone (Ctrl-C or a hang-up cancels)."""
        try:
            return Ended(waiting.block())
        except KeyboardInterrupt:
            return HungUp()

    def code(self) -> Reply:
        """Nothing can be typed without a terminal."""
        return HungUp()

    def resend(self, text: str) -> bool:
        """Nobody can press Enter."""
        return False


class TerminalConversation(StreamConversation):
    """A tty on ``fd`` (read) and ``out`` (write)."""

    can_type = True
    can_resend = True

    def __init__(self, fd: int, out: TextIO, *, line_timeout: float = 120.0) -> None:
        super().__init__(out)
        self.fd = fd
        self.line_timeout = line_timeout

    def _read_line(self, timeout: float) -> str | None:
        """One typed line; None at end of input, on Ctrl-C or after ``timeout`` seconds."""
        try:
            ready, _, _ = select.select([self.fd], [], [], timeout)
            if not ready:
                return None
            data = os.read(self.fd, 1024)
        except KeyboardInterrupt:
            return None
        if not data:
            return None
        return data.decode("utf-8", "replace").splitlines()[0] if data.strip() else ""

    def wait_or_code(self, waiting: Waiting, seconds: int) -> Reply:
        """Watch the phone's answer and the keyboard together."""
        self.say(say.waiting(seconds, self.can_resend))
        try:
            return self._watch(waiting)
        except KeyboardInterrupt:
            return HungUp()

    def _watch(self, waiting: Waiting) -> Reply:
        call: PendingCall | None = None
        failure: GatewayUnreachable | None = None
        retry_at = 0.0
        try:
            while waiting.seconds_left() > 0:
                if call is None and time.monotonic() >= retry_at:
                    try:
                        call = waiting.start()
                    except GatewayUnreachable as exc:
                        failure, retry_at = exc, time.monotonic() + RETRY_SECONDS
                pause = waiting.seconds_left()
                if call is None:
                    pause = min(pause, max(0.0, retry_at - time.monotonic()))
                watched: list[int | PendingCall] = [self.fd] if call is None else [self.fd, call]
                ready, _, _ = select.select(watched, [], [], pause)
                if call is not None and call in ready:
                    pending, call = call, None
                    try:
                        view = waiting.finish(pending)
                    except GatewayUnreachable as exc:
                        failure, retry_at = exc, time.monotonic() + RETRY_SECONDS
                        continue
                    failure = None
                    if view is not None:
                        return Ended(view)
                if self.fd in ready:
                    line = self._read_line(0)
                    return HungUp() if line is None else Typed(line)
        finally:
            if call is not None:
                call.abandon()
        if failure is not None:
            raise failure
        return Ended(waiting.last)

    def code(self) -> Reply:
        """Prompt for a code and read it."""
        self.out.write(say.CODE_PROMPT)
        self.out.flush()
        line = self._read_line(self.line_timeout)
        return HungUp() if line is None else Typed(line)

    def resend(self, text: str) -> bool:
        """Offer a new request; any line (Enter) says yes."""
        self.out.write(text)
        self.out.flush()
        return self._read_line(self.line_timeout) is not None


def conversation_for_stdio() -> StreamConversation:
    """The tty on stdin/stdout when there is one, else stderr only."""
    if os.isatty(0) and os.isatty(1):
        return TerminalConversation(0, sys.stdout)
    return StreamConversation(sys.stderr)
