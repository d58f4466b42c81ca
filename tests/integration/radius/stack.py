"""A real stack for the RADIUS tests: Redis, ``pushgate serve``, ``pushgate worker`` and
``pushgate radius`` as processes, with helpers for the admin, the portal key and phones."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pyotp
from pyrad.packet import AuthPacket

from integrations.radius.dictionary import radius_dictionary
from pushgate.devicekit.authenticator import SoftAuthenticator
from pushgate.devicekit.client import DeviceClient
from tests.integration.processes import PUSHGATE, Process, wait_until
from tests.portal import Portal

SECRET = "radius-shared-secret-for-tests"
STEP = 30
#: a code for the previous step is not used this close to the end of the current one
PAST_STEP_MARGIN = 5.0


@dataclass
class Stack:
    """The running processes' addresses and keys."""

    base_url: str
    origin: str
    admin_key: str
    portal_key: str
    radius_port: int
    radius: Process
    env: dict[str, str]
    cwd: Path
    started: list[Process]


def radius_env(base: dict[str, str], **settings: object) -> dict[str, str]:
    """The environment of a ``pushgate radius`` process with ``PUSHGATE_RADIUS_*`` settings."""
    env = {k: v for k, v in base.items() if not k.startswith("PUSHGATE_RADIUS_")}
    env.update({f"PUSHGATE_RADIUS_{k.upper()}": str(v) for k, v in settings.items()})
    return env


async def start_radius(
    started: list[Process], env: dict[str, str], cwd: Path, name: str = "radius"
) -> tuple[Process, int]:
    """``pushgate radius`` on a free UDP port; returns once it logged where it listens."""
    process = Process(name, [*PUSHGATE, "radius"], env, cwd)
    started.append(process)
    port: list[int] = []

    async def listening() -> bool:
        for line in process.log_text().splitlines():
            if '"radius.listening"' in line:
                port.append(int(json.loads(line)["port"]))
                return True
        return False

    await wait_until(listening, f"{name} listening", alive=process)
    return process, port[0]


def log_events(process: Process, event: str) -> list[dict[str, Any]]:
    """The JSON log lines of ``process`` whose event is ``event``."""
    found = []
    for line in process.log_text().splitlines():
        if line.startswith("{") and f'"{event}"' in line:
            entry = json.loads(line)
            if entry.get("event") == event:
                found.append(entry)
    return found


def new_user() -> str:
    return f"vpn-{secrets.token_hex(4)}"


class TotpApp:
    """An authenticator app on the real clock that never offers a used or nearly stale step."""

    def __init__(self, secret: str) -> None:
        self.totp = pyotp.TOTP(secret)
        self.used: set[int] = set()

    def confirm_codes(self) -> list[str]:
        """Two consecutive codes the server accepts for a while (their steps become used)."""
        now = time.time()
        current = int(now // STEP)
        first = current - 1 if now - current * STEP < STEP - PAST_STEP_MARGIN else current
        self.used |= {first, first + 1}
        return [self.totp.at(first * STEP), self.totp.at((first + 1) * STEP)]

    async def fresh_code(self) -> str:
        """A code for an acceptable step not used yet (waits for the next step if needed)."""
        for _ in range(3):
            now = time.time()
            current = int(now // STEP)
            oldest = current - 1 if now - current * STEP < STEP - PAST_STEP_MARGIN else current
            for step in range(oldest, current + 2):
                if step not in self.used:
                    self.used.add(step)
                    return str(self.totp.at(step * STEP))
            await asyncio.sleep((current + 1) * STEP - now + 0.05)
        raise AssertionError("no usable TOTP step")

    def wrong_code(self) -> str:
        """Six digits that match no step near now."""
        now = int(time.time())
        near = {self.totp.at(now + k * STEP) for k in range(-3, 4)}
        return next(c for c in (f"{n:06d}" for n in range(1000, 10**6, 7919)) if c not in near)


@dataclass
class Scenario:
    """One test's view of the stack: the admin, the portal key and enrolled phones."""

    stack: Stack
    session: aiohttp.ClientSession
    devices: list[DeviceClient] = field(default_factory=list)

    @property
    def admin(self) -> Portal:
        return Portal(self.session, self.stack.base_url, self.stack.admin_key)

    @property
    def portal(self) -> Portal:
        return Portal(self.session, self.stack.base_url, self.stack.portal_key)

    async def policy(self, **fields: object) -> None:
        """Set the whole tenant policy: defaults plus ``fields``."""
        reply = await self.admin.call("PUT", "/v1/policy", fields)
        assert reply.status == 200, reply.body

    async def phone(self, user: str) -> DeviceClient:
        """Enroll a software phone (in-app channel) for ``user``."""
        device = DeviceClient(
            self.stack.base_url,
            session=self.session,
            authenticator=SoftAuthenticator.generate(origin=self.stack.origin, rp_id="localhost"),
        )
        await device.enroll(await self.portal.enrollment_code(user))
        self.devices.append(device)
        return device

    async def totp(self, user: str) -> TotpApp:
        """Enroll and confirm a TOTP key for ``user``."""
        reply = await self.portal.call("POST", f"/v1/users/{user}/totp")
        assert reply.status == 201, reply.body
        app = TotpApp(reply.body["secret"])
        confirm = {"codes": app.confirm_codes()}
        reply = await self.portal.call("POST", f"/v1/users/{user}/totp/confirm", confirm)
        assert reply.status == 200, reply.body
        return app

    async def pending(self, device: DeviceClient, count: int = 1) -> list[dict[str, Any]]:
        """Wait until the phone lists ``count`` pending challenges; returns them."""
        items: list[dict[str, Any]] = []

        async def listed() -> bool:
            items[:] = await device.list_challenges()
            return len(items) >= count

        await wait_until(listed, f"{count} pending challenge(s) on the phone")
        return items

    async def challenge(self, challenge_id: str) -> dict[str, Any]:
        """The portal's view of a challenge."""
        reply = await self.portal.call("GET", f"/v1/challenges/{challenge_id}")
        assert reply.status == 200, reply.body
        result: dict[str, Any] = reply.body
        return result


class _Replies(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait(data)


class PacketNas:
    """A NAS made of a UDP socket and pyrad packets, for what radclient cannot do: resend the
    very same bytes after the answer came, or send from another loopback address."""

    def __init__(self, port: int, secret: str, source: str = "127.0.0.1") -> None:
        self.port, self.secret, self.source = port, secret.encode(), source
        self.dictionary = radius_dictionary()
        self._transport: asyncio.DatagramTransport | None = None
        self._replies = _Replies()

    async def __aenter__(self) -> PacketNas:
        self._transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: self._replies, local_addr=(self.source, 0)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._transport is not None:
            self._transport.close()

    def request(self, user: str, password: str) -> Any:
        """A signed Access-Request (pyrad ``AuthPacket``)."""
        packet = AuthPacket(secret=self.secret, dict=self.dictionary)
        packet["User-Name"] = user
        packet["User-Password"] = packet.PwCrypt(password)
        packet.add_message_authenticator()
        return packet

    async def exchange(self, raw: bytes, wait: float = 5.0) -> bytes | None:
        """Send ``raw``; the reply bytes, or None when nothing came within ``wait`` seconds."""
        assert self._transport is not None
        self._transport.sendto(raw, ("127.0.0.1", self.port))
        try:
            return await asyncio.wait_for(self._replies.queue.get(), wait)
        except TimeoutError:
            return None
