"""The UDP side: which NAS may ask, Message-Authenticator checks, duplicates, replies (pyrad codec).

Every request must carry a valid Message-Authenticator (RFC 3579, the BlastRADIUS defence of
CVE-2024-3596) and come from a configured client; everything else is dropped and logged.
Every reply carries a Message-Authenticator as its first attribute. Each request is answered
in its own task, so a push waiting for a phone never holds up other requests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Sequence
from typing import Any, cast

from pyrad import packet as radius
from pyrad.dictionary import Dictionary

from integrations.radius.duplicates import Duplicates, Key
from integrations.radius.logins import LoginRequest, Logins, Verdict
from integrations.radius.settings import RadiusClient
from pushgate.logs import get_logger

log = get_logger("pushgate.radius")

USER_NAME, USER_PASSWORD, CHAP_PASSWORD, STATE, CALLING_STATION_ID = 1, 2, 3, 24, 31
EAP_MESSAGE = 79
_REPLY_CODES = {
    "accept": radius.AccessAccept,
    "reject": radius.AccessReject,
    "challenge": radius.AccessChallenge,
}
#: one log line per (reason, source) in this many seconds for dropped packets
DROP_LOG_SECONDS = 10.0


class ClientTable:
    """The configured NAS clients; the most specific network containing the source wins."""

    def __init__(self, clients: Sequence[RadiusClient]) -> None:
        """Sort by prefix length, longest first."""
        self._clients = sorted(clients, key=lambda c: c.network.prefixlen, reverse=True)

    def lookup(self, source: str) -> RadiusClient | None:
        """The client for a source address (IPv4-mapped IPv6 addresses count as IPv4)."""
        try:
            address = ipaddress.ip_address(source.partition("%")[0])
        except ValueError:
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        for client in self._clients:
            if address.version == client.network.version and address in client.network:
                return client
        return None


class _DropLog:
    """Logs dropped packets at most once per reason and source every few seconds."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], float] = {}

    def __call__(self, reason: str, source: str, **fields: Any) -> None:
        now = time.monotonic()
        key = (reason, source)
        if now - self._last.get(key, -DROP_LOG_SECONDS) < DROP_LOG_SECONDS:
            return
        if len(self._last) > 10_000:
            self._last.clear()
        self._last[key] = now
        log.warning("radius.dropped", reason=reason, source=source, **fields)


def _first(request: radius.AuthPacket, code: int) -> bytes | None:
    values = request.get(code)
    return bytes(values[0]) if values else None


def _text(raw: bytes | None) -> str | None:
    return raw.decode("utf-8", errors="replace") if raw is not None else None


class RadiusProtocol(asyncio.DatagramProtocol):
    """Receives Access-Requests (and Status-Server), answers each in its own task."""

    def __init__(
        self,
        clients: ClientTable,
        dictionary: Dictionary,
        logins: Logins,
        *,
        max_in_flight: int,
    ) -> None:
        """Answer ``clients`` with verdicts from ``logins``; at most ``max_in_flight`` at once."""
        self._clients = clients
        self._dictionary = dictionary
        self._logins = logins
        self._max_in_flight = max_in_flight
        self._duplicates = Duplicates()
        self._tasks: set[asyncio.Task[None]] = set()
        self._transport: asyncio.DatagramTransport | None = None
        self._drop = _DropLog()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the socket to send replies on."""
        self._transport = cast(asyncio.DatagramTransport, transport)  # uvloop's is no subclass

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        """Check where it came from and that it is signed; then answer it (once)."""
        source = str(addr[0])
        client = self._clients.lookup(source)
        if client is None:
            self._drop("unknown_client", source)
            return
        request = self._decode(data, client, source)
        if request is None:
            return
        key: Key = (client.name + "|" + source, request.id, bytes(request.authenticator))
        seen = self._duplicates.begin(key)
        if isinstance(seen, bytes):
            log.info("radius.duplicate", client=client.name, id=request.id, resent="reply")
            self._send(seen, addr)
            return
        if seen == "in_progress":
            log.info("radius.duplicate", client=client.name, id=request.id, resent="nothing")
            return
        if len(self._tasks) >= self._max_in_flight:
            self._duplicates.abandon(key)
            self._drop("overloaded", source, in_flight=len(self._tasks))
            return
        task = asyncio.get_running_loop().create_task(self._answer(request, client, addr, key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _decode(self, data: bytes, client: RadiusClient, source: str) -> radius.AuthPacket | None:
        try:
            request = radius.AuthPacket(packet=data, secret=client.secret, dict=self._dictionary)
        except (radius.PacketError, ValueError, KeyError, IndexError) as exc:
            self._drop("malformed", source, error=str(exc))
            return None
        if request.code not in (radius.AccessRequest, radius.StatusServer):
            self._drop("not_an_access_request", source, code=request.code)
            return None
        if not request.message_authenticator:
            self._drop("missing_message_authenticator", source, client=client.name)
            return None
        try:
            valid = request.verify_message_authenticator()
        except Exception:  # a malformed attribute is a bad signature too
            valid = False
        if not valid:
            self._drop("bad_message_authenticator", source, client=client.name)
            return None
        return request

    async def _answer(
        self, request: radius.AuthPacket, client: RadiusClient, addr: Any, key: Key
    ) -> None:
        try:
            if request.code == radius.StatusServer:
                verdict = Verdict("accept", "pushgate radius is running.")
            else:
                verdict = await self._verdict(request, client)
            reply = self._reply(request, verdict)
        except Exception:
            self._duplicates.abandon(key)
            log.exception("radius.failed", client=client.name, id=request.id)
            return
        self._duplicates.finish(key, reply)
        log.info(
            "radius.answered",
            client=client.name,
            id=request.id,
            user=_text(_first(request, USER_NAME)),
            outcome=verdict.outcome,
            **verdict.log,
        )
        if verdict.log.get("fail_open"):
            log.warning("radius.fail_open", client=client.name, error=verdict.log.get("error"))
        elif "unreachable" in verdict.log:
            log.error("radius.gateway_unreachable", error=verdict.log["unreachable"])
        self._send(reply, addr)

    async def _verdict(self, request: radius.AuthPacket, client: RadiusClient) -> Verdict:
        user_name = _text(_first(request, USER_NAME))
        if not user_name:
            return Verdict("reject", "User-Name is missing.", log={"refused": "no_user_name"})
        if request.get(CHAP_PASSWORD) or request.get(EAP_MESSAGE):
            message = "Only PAP (User-Password) is supported."
            return Verdict("reject", message, log={"refused": "not_pap"})
        hidden = _first(request, USER_PASSWORD)
        try:
            password = request.PwDecrypt(hidden) if hidden is not None else None
        except radius.PacketError:
            return Verdict("reject", "User-Password is malformed.", log={"refused": "bad_pap"})
        login = LoginRequest(
            client=client.name,
            user_name=user_name,
            password=password,
            state=_first(request, STATE),
            calling_station=_text(_first(request, CALLING_STATION_ID)),
        )
        return await self._logins.decide(login)

    @staticmethod
    def _reply(request: radius.AuthPacket, verdict: Verdict) -> bytes:
        reply = request.CreateReply()  # signed with a Message-Authenticator, Proxy-State copied
        reply.code = _REPLY_CODES[verdict.outcome]
        reply["Reply-Message"] = verdict.message
        if verdict.state is not None:
            reply["State"] = verdict.state
        if verdict.session_timeout is not None:
            reply["Session-Timeout"] = verdict.session_timeout
        raw: bytes = reply.ReplyPacket()
        return raw

    def _send(self, data: bytes, addr: Any) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(data, addr)

    async def close(self) -> None:
        """Stop answering: cancel requests in progress and close the socket."""
        if self._transport is not None:
            self._transport.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
