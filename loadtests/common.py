"""Shared pieces of the locust users: the seed, state shared between users, a device, a waiter.

Imports only the I/O-free parts of pushgate (the software authenticator, the signed answer
body, the enroll body and the decision binding): no asyncio, aiohttp or redis under gevent.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pushgate.devicekit.answers import sign_response_body  # noqa: E402
from pushgate.devicekit.authenticator import SoftAuthenticator  # noqa: E402
from pushgate.devicekit.enrollment import DeviceCredentials, enroll_body  # noqa: E402

JSONDict = dict[str, Any]
CONTEXT = {"ip": "198.51.100.7", "location": "Berlin, DE", "user_agent": "locust"}


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    admin_key: str
    portal_key: str


@dataclass(frozen=True)
class Seed:
    """What ``run.sh`` prepared: the tenants, the WebAuthn origin and the push platforms."""

    origin: str
    rp_id: str
    load: Tenant
    bomb: Tenant
    platforms: tuple[str, ...] = ("none",)
    apns_topic: str = "com.example.pushgate"
    radius_port: int | None = None
    radius_secret: str | None = None
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))

    @classmethod
    def from_env(cls) -> Seed:
        """Read the JSON file named by ``LOADTEST_SEED``."""
        path = os.environ.get("LOADTEST_SEED")
        if not path:
            raise SystemExit("LOADTEST_SEED must name the seed JSON written by loadtests/run.sh")
        data = json.loads(Path(path).read_text())
        return cls(
            origin=data["origin"],
            rp_id=data["rp_id"],
            load=Tenant(**data["load"]),
            bomb=Tenant(**data["bomb"]),
            platforms=tuple(data.get("platforms") or ("none",)),
            apns_topic=data.get("apns_topic", "com.example.pushgate"),
            radius_port=data.get("radius", {}).get("port"),
            radius_secret=data.get("radius", {}).get("secret"),
        )


def env_int(name: str, default: int) -> int:
    """An integer knob from the environment."""
    return int(os.environ.get(name, default))


def env_float(name: str, default: float) -> float:
    """A float knob from the environment."""
    return float(os.environ.get(name, default))


def fire(environment: Any, kind: str, name: str, ms: float, error: str | None = None) -> None:
    """Record a custom request event (shows up in the CSV and HTML reports)."""
    environment.events.request.fire(
        request_type=kind,
        name=name,
        response_time=ms,
        response_length=0,
        exception=RuntimeError(error) if error else None,
        context={},
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Board:
    """State the users share inside the one locust process (gevent: no locks needed between
    yields): users with an enrolled device, the number each portal displays, and when and how
    each device answered."""

    def __init__(self) -> None:
        self.ready_users: list[str] = []
        self.numbers: dict[str, str | None] = {}
        self.answers: dict[str, tuple[str, float]] = {}
        self.answer_statuses: dict[str, list[int]] = {}
        self.ledger: list[JSONDict] = []
        self.started = time.monotonic()
        self._next_user = 0

    def new_user_id(self, prefix: str, run_id: str) -> str:
        self._next_user += 1
        return f"{prefix}-{run_id}-{self._next_user:04d}"

    def pick_user(self) -> str | None:
        return random.choice(self.ready_users) if self.ready_users else None

    def forget(self, challenge_id: str) -> tuple[str, float] | None:
        self.numbers.pop(challenge_id, None)
        return self.answers.pop(challenge_id, None)

    def record(
        self,
        challenge_id: str,
        created_at: float,
        answer: tuple[str, float] | None,
        waited: Waited,
    ) -> None:
        """Keep what one login saw (``LOADTEST_LEDGER``): when it was created, how the phone
        answered and how its answers were received, and what the portal was told."""
        self.ledger.append(
            {
                "id": challenge_id,
                "created_at": created_at,
                "decision": answer[0] if answer else None,
                "answer_statuses": self.answer_statuses.pop(challenge_id, []),
                "told": waited.result["status"] if waited.result else None,
                "reconnects": waited.reconnects,
                "error": waited.error,
            }
        )


class Device:
    """One software device: its authenticator and credentials, requests made by its user."""

    def __init__(self, seed: Seed, platform: str) -> None:
        self.platform = platform
        self.authenticator = SoftAuthenticator.generate(origin=seed.origin, rp_id=seed.rp_id)
        self.credentials: DeviceCredentials | None = None
        self.push_token = secrets.token_hex(32) if platform != "none" else None
        self.bundle_id = seed.apns_topic if platform == "apns" else None

    @property
    def headers(self) -> dict[str, str]:
        assert self.credentials is not None
        return {"Authorization": self.credentials.authorization}

    def enroll(self, client: Any, portal_key: str, user_id: str) -> None:
        """Enrollment code (portal), WebAuthn options, registration (device)."""
        code = _ok_json(
            client.post(
                f"/v1/users/{user_id}/push-enrollments",
                headers=bearer(portal_key),
                name="/v1/users/[id]/push-enrollments",
            )
        )["code"]
        options = _ok_json(
            client.post(
                "/v1/device/enroll/options", json={"code": code}, name="/v1/device/enroll/options"
            )
        )
        body = enroll_body(
            self.authenticator,
            code,
            options,
            platform=self.platform,  # type: ignore[arg-type]
            push_token=self.push_token,
            app_bundle_id=self.bundle_id,
            device_name="locust",
        )
        answer = _ok_json(client.post("/v1/device/enroll", json=body, name="/v1/device/enroll"))
        self.credentials = DeviceCredentials.from_json(answer)

    def answer_body(self, nonce: str, decision: str, number: str | None) -> JSONDict:
        """The signed ``/response`` body."""
        return sign_response_body(self.authenticator, nonce, decision, number)  # type: ignore[arg-type]


def _ok_json(response: Any) -> JSONDict:
    if response.status_code >= 300:
        raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
    data: JSONDict = response.json()
    return data


@dataclass
class Waited:
    """What a portal saw on a challenge websocket."""

    result: JSONDict | None = None
    result_at: float | None = None
    messages: list[str] = field(default_factory=list)
    close_code: int | None = None
    error: str | None = None
    reconnects: int = 0


#: close codes after which a portal connects again (service restart, try again later,
#: abnormal closure): the gateway went away or lost Redis; the challenge goes on
RECONNECT_CODES = {1006, 1011, 1012, 1013}
RECONNECT_PAUSE = 0.5


def wait_result(url: str, headers: dict[str, str], timeout: float) -> Waited:
    """Open ``/v1/challenges/{id}/ws`` and read until the ``result`` message, as a portal
    does: a socket that breaks or a gateway that refuses it (503 while failing over) is
    connected again after a pause, until ``timeout`` seconds have passed."""
    seen = Waited()
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if _wait_once(url, headers, left, seen) or seen.close_code not in RECONNECT_CODES:
            break
        seen.reconnects += 1
        time.sleep(min(RECONNECT_PAUSE, max(0.0, deadline - time.monotonic())))
    if seen.result is None and seen.error is None:
        seen.error = f"closed with {seen.close_code} before the result"
    return seen


def _wait_once(url: str, headers: dict[str, str], timeout: float, seen: Waited) -> bool:
    """One connection: True once the result arrived; otherwise ``seen.close_code`` says why
    it ended (1006 for a broken or refused connection)."""
    deadline = time.monotonic() + timeout
    seen.close_code, seen.error = 1006, None
    try:
        ws = websocket.create_connection(url, header=headers, timeout=timeout)
    except (OSError, websocket.WebSocketException) as exc:
        seen.error = f"connect: {exc!r}"
        return False
    try:
        while (left := deadline - time.monotonic()) > 0:
            ws.settimeout(left)
            opcode, data = ws.recv_data()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                seen.close_code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
                return False
            if opcode != websocket.ABNF.OPCODE_TEXT:
                continue
            message = json.loads(data)
            seen.messages.append(message.get("type", "?"))
            if message.get("type") == "result":
                seen.result, seen.result_at = message["challenge"], time.monotonic()
                return True
        seen.close_code, seen.error = None, "no result before the deadline"
    except (OSError, websocket.WebSocketException, ValueError) as exc:
        seen.error = f"receive: {exc!r}"
    finally:
        ws.close()
    return False
