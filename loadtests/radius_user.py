"""VPN logins at nine o'clock: locust users that sign in through ``pushgate radius``.

Each user owns a phone (a software device enrolled through the API). A login is what a VPN
concentrator and its user do with number matching: Access-Request with ``push`` ->
Access-Challenge showing the number -> the user presses OK (the follow-up request with the
State waits) while approving on the phone with the number -> Access-Accept. Some users deny.
"""

from __future__ import annotations

import random
import re
import secrets
import time
from typing import Any

import gevent
from common import Device, Seed, env_float, env_int, fire
from locust import FastHttpUser, between, task
from locust.exception import StopUser
from radius_client import Answer, NoReply, RadiusClient

SEED = Seed.from_env()
NUMBER = re.compile(r"Enter (\d+) in your authenticator app")
PHONE_WAIT_SECONDS = 30.0
#: like a VPN set up for push: wait 20 s per try, 3 retransmissions (longer than the push TTL)
NAS_TIMEOUT_SECONDS, NAS_RETRIES = 20.0, 3


class VpnUser(FastHttpUser):
    """An employee signing in to the VPN with a push and number matching."""

    fixed_count = env_int("LOADTEST_VPN_USERS", 6)
    wait_time = between(1.0, 3.0)
    deny_ratio = env_float("LOADTEST_DENY_RATIO", 0.1)

    def on_start(self) -> None:
        if SEED.radius_port is None or SEED.radius_secret is None:
            raise StopUser()
        self.user_id = f"vpn-{SEED.run_id}-{secrets.token_hex(4)}"
        self.device = Device(SEED, random.choice(SEED.platforms))
        self.device.enroll(self.client, SEED.load.portal_key, self.user_id)
        self.nas = RadiusClient(
            "127.0.0.1",
            SEED.radius_port,
            SEED.radius_secret,
            timeout=NAS_TIMEOUT_SECONDS,
            retries=NAS_RETRIES,
        )
        self.answered: set[str] = set()

    @task
    def login(self) -> None:
        started = time.monotonic()
        first = self._exchange("RADIUS Access-Request", "push", None)
        if first is None:
            return
        match = NUMBER.search(first.message)
        if first.code != "Access-Challenge" or first.state is None or match is None:
            fire(self.environment, "RADIUS", "RADIUS login", 0, f"{first.code}: {first.message}")
            return
        follow_up = gevent.spawn(self._exchange, "RADIUS follow-up (waits)", "", first.state)
        decision = "deny" if random.random() < self.deny_ratio else "approve"
        answered_at = self._answer_on_phone(decision, match.group(1))
        final = follow_up.get(timeout=NAS_TIMEOUT_SECONDS * (NAS_RETRIES + 1) + 5)
        if final is None or answered_at is None:
            return
        want = "Access-Accept" if decision == "approve" else "Access-Reject"
        error = None if final.code == want else f"{final.code} after {decision}: {final.message}"
        elapsed = (time.monotonic() - started) * 1000
        fire(self.environment, "RADIUS", "RADIUS login", elapsed, error)
        if error is None:
            ms = (time.monotonic() - answered_at) * 1000
            fire(self.environment, "RADIUS", "RADIUS phone answer->reply", ms)

    def _exchange(self, name: str, password: str, state: bytes | None) -> Answer | None:
        packet = self.nas.access_request(self.user_id, password, state=state, caller="198.51.100.7")
        sent = time.monotonic()
        try:
            answer = self.nas.exchange(packet)
        except (NoReply, OSError) as exc:
            fire(self.environment, "RADIUS", name, (time.monotonic() - sent) * 1000, repr(exc))
            return None
        fire(self.environment, "RADIUS", name, (time.monotonic() - sent) * 1000)
        return answer

    def _answer_on_phone(self, decision: str, number: str) -> float | None:
        """Wait for the push on the phone, then answer it signed; when it was answered."""
        deadline = time.monotonic() + PHONE_WAIT_SECONDS
        while time.monotonic() < deadline:
            listed = self.client.get(
                "/v1/device/challenges",
                headers=self.device.headers,
                name="/v1/device/challenges [vpn]",
            )
            items = listed.json()["items"] if listed.status_code == 200 else []
            fresh = [i for i in items if i["id"] not in self.answered]
            if fresh:
                return self._respond(fresh[0], decision, number)
            gevent.sleep(0.2)
        fire(self.environment, "RADIUS", "RADIUS login", 0, "the push never reached the phone")
        return None

    def _respond(self, item: dict[str, Any], decision: str, number: str) -> float | None:
        self.answered.add(item["id"])
        body = self.device.answer_body(
            item["nonce"], decision, number if decision == "approve" else None
        )
        answered_at = time.monotonic()
        with self.client.post(
            f"/v1/device/challenges/{item['id']}/response",
            json=body,
            headers=self.device.headers,
            name="/v1/device/challenges/[id]/response [vpn]",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"{resp.status_code}: {resp.text[:200]}")
                return None
        return answered_at
