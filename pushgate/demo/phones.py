"""Simulated phones: authenticator-app accounts kept in this process, driven by the devicekit.

A push account is a real enrolled device (``platform: "none"``): a
:class:`~pushgate.devicekit.SoftAuthenticator` that signs with the demo server's WebAuthn
origin and RP id, device credentials, and one ``/v1/device/ws`` connection that brings its
challenges in live. A TOTP account is a secret the user added; the phone computes its codes.
Nothing here is persisted: the phones live as long as the demo process.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import secrets
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

import aiohttp

from approvals.binding import Decision
from approvals.totp import STEP_SECONDS, current_code, step_at
from pushgate.devicekit import (
    DeviceApiError,
    DeviceCredentials,
    SoftAuthenticator,
    enroll_body,
    parse_enroll_url,
)
from pushgate.devicekit.client import DeviceClient
from pushgate.logs import get_logger
from pushgate.settings import Settings

log = get_logger("pushgate.demo.phones")

MAX_PHONES = 8
MAX_ACCOUNTS = 20
RECENT = 5
HEARTBEAT_SECONDS = 20.0


class PhoneError(ValueError):
    """A request the phone cannot carry out (bad link, unknown account, full phone)."""


@dataclass
class Account:
    """One row of the authenticator app: a push registration or a TOTP key."""

    id: str
    kind: Literal["push", "totp"]
    label: str
    issuer: str
    added_at: float
    client: DeviceClient | None = None
    secret: str | None = field(default=None, repr=False)
    connected: bool = False
    revoked: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    task: asyncio.Task[None] | None = None

    def view(self, now: float) -> dict[str, Any]:
        """The row as the page shows it (codes, never secrets)."""
        row: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "label": self.label,
            "issuer": self.issuer,
            "added_at": self.added_at,
        }
        if self.kind == "totp" and self.secret:
            row["code"] = current_code(self.secret, now)
        if self.client is not None:
            row["device_id"] = self.client.device_id
            row["connected"] = self.connected
            row["revoked"] = self.revoked
        return row


def _b32_secret(raw: str) -> str:
    secret = raw.replace(" ", "").replace("-", "").upper().rstrip("=")
    try:
        decoded = base64.b32decode(secret + "=" * (-len(secret) % 8))
    except (binascii.Error, ValueError):
        raise PhoneError("the key is not base32 (letters A-Z and digits 2-7)") from None
    if len(decoded) < 10:
        raise PhoneError("the key is too short (at least 16 base32 characters)")
    return secret


def parse_otpauth(uri: str) -> tuple[str, str, str]:
    """``(issuer, account, secret)`` of an ``otpauth://totp/...`` link with default parameters."""
    parts = urlsplit(uri)
    if parts.scheme != "otpauth" or parts.netloc != "totp":
        raise PhoneError("not an otpauth://totp link")
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if query.get("algorithm", "SHA1").upper() != "SHA1" or query.get("digits", "6") != "6":
        raise PhoneError("only SHA-1, 6-digit keys are supported")
    if query.get("period", "30") != "30":
        raise PhoneError("only 30-second keys are supported")
    label = unquote(parts.path.lstrip("/"))
    issuer, _, account = label.rpartition(":")
    issuer = query.get("issuer") or issuer
    secret = _b32_secret(query.get("secret", ""))
    return issuer.strip()[:64], (account.strip() or "account")[:64], secret


class Phone:
    """One simulated phone: its accounts, incoming prompts and the pages watching it."""

    def __init__(self, phone_id: str, book: PhoneBook) -> None:
        """An empty phone; accounts are added by link or key."""
        self.id = phone_id
        self._book = book
        self.accounts: dict[str, Account] = {}
        self.prompts: dict[tuple[str, str], dict[str, Any]] = {}
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self._watchers: set[asyncio.Event] = set()

    def notify(self) -> None:
        """Wake every page watching this phone."""
        for event in self._watchers:
            event.set()

    @contextlib.contextmanager
    def watching(self) -> Iterator[asyncio.Event]:
        """An event set whenever the phone changes, for as long as the block runs."""
        event = asyncio.Event()
        self._watchers.add(event)
        try:
            yield event
        finally:
            self._watchers.discard(event)

    def view(self) -> dict[str, Any]:
        """The whole phone for the page: accounts, live prompts and recent outcomes."""
        now = time.time()
        prompts = []
        ordered = sorted(self.prompts.items(), key=lambda item: str(item[1].get("created_at")))
        for (account_id, _), prompt in ordered:
            if epoch_seconds(prompt.get("expires_at")) <= now:
                continue
            account = self.accounts.get(account_id)
            shown = {k: v for k, v in prompt.items() if k != "nonce"}
            label = account.label if account else None
            prompts.append({**shown, "account_id": account_id, "account": label})
        return {
            "phone": self.id,
            "now": now,
            "period": STEP_SECONDS,
            "step_ends_at": (step_at(now) + 1) * STEP_SECONDS,
            "accounts": [a.view(now) for a in self.accounts.values()],
            "prompts": prompts,
            "recent": list(self.recent),
        }

    def _new_account_id(self) -> str:
        if len(self.accounts) >= MAX_ACCOUNTS:
            raise PhoneError(f"this phone holds at most {MAX_ACCOUNTS} accounts")
        return "acc_" + secrets.token_hex(6)

    def add_totp(self, *, issuer: str, label: str, secret: str) -> Account:
        """Add a verification-code account from a key typed in or read from a link."""
        account = Account(
            id=self._new_account_id(),
            kind="totp",
            label=label.strip()[:64] or "account",
            issuer=issuer.strip()[:64],
            added_at=time.time(),
            secret=_b32_secret(secret),
        )
        self.accounts[account.id] = account
        self.notify()
        return account

    async def add_push(self, link: str) -> Account:
        """Enroll through the real device routes with a ``pushgate://enroll`` link."""
        account_id = self._new_account_id()
        try:
            server, code = parse_enroll_url(link.strip())
        except ValueError as exc:
            raise PhoneError(str(exc)) from None
        settings = self._book.settings
        if server.rstrip("/") != settings.public_url:
            raise PhoneError(f"this simulator enrolls only with {settings.public_url}")
        authenticator = SoftAuthenticator.generate(
            origin=settings.origins[0], rp_id=settings.webauthn_rp_id
        )
        client = DeviceClient(
            self._book.base_url, session=self._book.session, authenticator=authenticator
        )
        options = await client.enroll_options(code)
        body = enroll_body(
            authenticator, code, options, platform="none", device_name=f"Demo phone ({self.id})"
        )
        async with client.session.post(client.url("/v1/device/enroll"), json=body) as resp:
            answer = await resp.json(content_type=None)
            if resp.status != 201 or not isinstance(answer, dict):
                problem = answer if isinstance(answer, dict) else {"status": resp.status}
                raise DeviceApiError(resp.status, problem)
        client.credentials = DeviceCredentials.from_json(answer)
        user = options.get("user")
        account = Account(
            id=account_id,
            kind="push",
            label=str(answer.get("user_id") or (user or {}).get("name") or "account"),
            issuer=urlsplit(server).netloc,
            added_at=time.time(),
            client=client,
        )
        self.accounts[account.id] = account
        account.task = asyncio.create_task(self._relay(account), name=f"demo-phone-{account.id}")
        self.notify()
        return account

    async def remove(self, account_id: str) -> None:
        """Delete the account; a push account also removes its device on the server."""
        account = self.accounts.pop(account_id, None)
        if account is None:
            raise PhoneError("no such account")
        await _stop(account)
        if account.client is not None and not account.revoked:
            with contextlib.suppress(DeviceApiError, aiohttp.ClientError):
                await account.client.remove()
        for key in [k for k in self.prompts if k[0] == account_id]:
            del self.prompts[key]
        self.notify()

    def _prompt(self, account_id: str, challenge_id: str) -> tuple[Account, dict[str, Any]]:
        account = self.accounts.get(account_id)
        prompt = self.prompts.get((account_id, challenge_id))
        if account is None or account.client is None or prompt is None:
            raise PhoneError("no such sign-in request on this phone")
        return account, prompt

    async def open_prompt(self, account_id: str, challenge_id: str) -> None:
        """The user looked at the request: the device reads it, which records ``seen``."""
        account, prompt = self._prompt(account_id, challenge_id)
        if prompt.get("seen"):
            return
        prompt["seen"] = True
        assert account.client is not None
        with contextlib.suppress(DeviceApiError, aiohttp.ClientError):
            await account.client.get_challenge(challenge_id)

    async def answer(
        self, account_id: str, challenge_id: str, decision: Decision, number: str | None
    ) -> dict[str, Any]:
        """Sign the decision with the account's authenticator and send it; the API's view."""
        account, prompt = self._prompt(account_id, challenge_id)
        assert account.client is not None
        async with account.lock:
            try:
                view = await account.client.respond(
                    challenge_id, decision, number, nonce=str(prompt["nonce"])
                )
            except DeviceApiError as exc:
                if exc.code in ("challenge_already_decided", "challenge_expired", "not_found"):
                    self._end(account_id, challenge_id, exc.code)
                raise
        self._end(account_id, challenge_id, str(view.get("status")), view.get("reason"))
        return view

    def _end(self, account_id: str, challenge_id: str, status: str, reason: object = None) -> None:
        prompt = self.prompts.pop((account_id, challenge_id), None)
        if prompt is not None:
            context = prompt.get("context") or {}
            self.recent.appendleft(
                {
                    "id": challenge_id,
                    "app_name": prompt.get("app_name"),
                    "location": context.get("location"),
                    "status": status,
                    "reason": reason,
                    "at": time.time(),
                }
            )
            self.notify()

    async def _relay(self, account: Account) -> None:
        """Hold the account's device websocket open and mirror its challenges."""
        assert account.client is not None
        backoff = 0.5
        while account.id in self.accounts:
            try:
                async with account.client.websocket(heartbeat=HEARTBEAT_SECONDS) as socket:
                    account.connected = True
                    self.notify()
                    backoff = 0.5
                    async for message in socket:
                        await self._on_message(account, message)
            except DeviceApiError as exc:
                if exc.status == 401:
                    account.revoked = True
                    account.connected = False
                    self.notify()
                    return
            except (aiohttp.ClientError, OSError) as exc:
                log.info("demo_phone_socket_lost", account=account.id, error=str(exc))
            account.connected = False
            self.notify()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _on_message(self, account: Account, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "snapshot":
            items = [i for i in message.get("items") or [] if isinstance(i, dict)]
            live = {str(i.get("id")) for i in items}
            for key in [k for k in self.prompts if k[0] == account.id and k[1] not in live]:
                del self.prompts[key]
            for item in items:
                await self._arrived(account, item)
        elif kind == "challenge" and isinstance(message.get("challenge"), dict):
            await self._arrived(account, message["challenge"])
        elif kind == "ended":
            self._end(account.id, str(message.get("id")), str(message.get("status") or "ended"))
        self.notify()

    async def _arrived(self, account: Account, challenge: dict[str, Any]) -> None:
        key = (account.id, str(challenge.get("id")))
        if key in self.prompts:
            return
        self.prompts[key] = {**challenge, "seen": False}
        assert account.client is not None
        with contextlib.suppress(DeviceApiError, aiohttp.ClientError):
            await account.client.ack(key[1])


def epoch_seconds(value: object) -> float:
    """Seconds since the epoch of an RFC 3339 string from the API (0 when unreadable)."""
    if not isinstance(value, str):
        return 0.0
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


async def _stop(account: Account) -> None:
    if account.task is not None:
        account.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await account.task
        account.task = None
    account.connected = False


class PhoneBook:
    """Every simulated phone of this demo, by name."""

    def __init__(self, settings: Settings, base_url: str) -> None:
        """Phones reach the API at ``base_url`` and sign for ``settings``' origin and RP id."""
        self.settings = settings
        self.base_url = base_url
        self.phones: dict[str, Phone] = {}
        self.closing = False
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The HTTP session every simulated phone shares."""
        if self._session is None:
            raise RuntimeError("the phone book has not started")
        return self._session

    def start(self, session: aiohttp.ClientSession) -> None:
        """Use ``session`` from now on (opened with the app)."""
        self._session = session

    def get(self, phone_id: str) -> Phone:
        """The phone of that name, created on first use (up to ``MAX_PHONES``)."""
        phone = self.phones.get(phone_id)
        if phone is None:
            if len(self.phones) >= MAX_PHONES:
                raise PhoneError(f"the demo simulates at most {MAX_PHONES} phones")
            phone = self.phones[phone_id] = Phone(phone_id, self)
        return phone

    async def close(self) -> None:
        """Stop every websocket relay and release the pages watching."""
        self.closing = True
        for phone in self.phones.values():
            for account in phone.accounts.values():
                await _stop(account)
            phone.notify()
