"""A blocking RADIUS client for the load tests: what a VPN concentrator sends to pushgate radius.

Plain ``socket`` calls (cooperative once locust's gevent has patched the standard library) and
pyrad's packet codec; the attribute dictionary comes from the repository. Like a NAS it signs
every request with a Message-Authenticator, resends the same bytes on timeout, and accepts
only a reply that verifies (Response Authenticator and Message-Authenticator).
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from pyrad.packet import AccessAccept, AccessChallenge, AccessReject, AuthPacket

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from integrations.radius.dictionary import radius_dictionary  # noqa: E402

CODES = {
    AccessAccept: "Access-Accept",
    AccessReject: "Access-Reject",
    AccessChallenge: "Access-Challenge",
}
DICTIONARY = radius_dictionary()


class NoReply(Exception):
    """No valid reply after every retransmission."""


@dataclass(frozen=True)
class Answer:
    """A verified reply."""

    code: str
    message: str
    state: bytes | None


class RadiusClient:
    """One NAS: a server address and its shared secret."""

    def __init__(
        self, host: str, port: int, secret: str, *, timeout: float = 10.0, retries: int = 3
    ) -> None:
        self.address = (host, port)
        self.secret = secret.encode()
        self.timeout = timeout
        self.retries = retries

    def access_request(
        self, user: str, password: str, *, state: bytes | None = None, caller: str | None = None
    ) -> AuthPacket:
        """A signed Access-Request with a PAP password (and the State of a challenge)."""
        packet = AuthPacket(secret=self.secret, dict=DICTIONARY)
        packet["User-Name"] = user
        packet["User-Password"] = packet.PwCrypt(password)
        if state is not None:
            packet["State"] = state
        if caller is not None:
            packet["Calling-Station-Id"] = caller
        packet.add_message_authenticator()
        return packet

    def exchange(self, packet: AuthPacket) -> Answer:
        """Send, resend the same bytes after each timeout, return the first verified reply."""
        raw = packet.RequestPacket()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(self.timeout)
            sock.connect(self.address)
            for _ in range(self.retries + 1):
                sock.send(raw)
                try:
                    while True:
                        data = sock.recv(4096)
                        reply = AuthPacket(packet=data, secret=self.secret, dict=DICTIONARY)
                        if packet.VerifyReply(reply, data, enforce_ma=True):
                            return _answer(reply)
                except TimeoutError:
                    continue
        raise NoReply(f"no valid reply from {self.address[0]}:{self.address[1]}")


def _answer(reply: AuthPacket) -> Answer:
    messages = reply.get("Reply-Message") or [""]
    states = reply.get("State")
    return Answer(
        CODES.get(reply.code, str(reply.code)),
        str(messages[0]),
        bytes(states[0]) if states else None,
    )
