"""Log lines to the local syslog socket (facility authpriv), like every PAM module.

Standard library only. Nothing secret is ever passed here (no key, no code). When the socket
is missing the line goes to stderr, so a broken syslog never breaks a login.
"""

from __future__ import annotations

import os
import socket
import sys
import time

AUTHPRIV = 10
ALERT, ERR, WARNING, NOTICE, INFO = 1, 3, 4, 5, 6
IDENT = "pushgate-ssh"


class Syslog:
    """Sends ``<PRI>Mmm dd hh:mm:ss pushgate-ssh[pid]: text`` datagrams to ``socket_path``."""

    def __init__(self, socket_path: str = "/dev/log") -> None:
        self.socket_path = socket_path

    def log(self, severity: int, text: str) -> None:
        """Send one line at ``severity`` (ALERT for a login let in without a second factor)."""
        stamp = time.strftime("%b %e %H:%M:%S")
        line = f"<{AUTHPRIV * 8 + severity}>{stamp} {IDENT}[{os.getpid()}]: {text}"
        data = line.replace("\n", " ").encode("utf-8", "replace")[:2048]
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self.socket_path)
                sock.send(data)
        except OSError:
            print(f"{IDENT}: {text}", file=sys.stderr)

    def alert(self, text: str) -> None:
        """A line an operator must not miss."""
        self.log(ALERT, text)

    def error(self, text: str) -> None:
        """A login that could not be checked."""
        self.log(ERR, text)

    def info(self, text: str) -> None:
        """An ordinary outcome."""
        self.log(INFO, text)
