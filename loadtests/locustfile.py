"""Locust users for pushgate: portals, devices, TOTP users and a push-bombing attacker.

Run through ``loadtests/run.sh``, which starts a local stack and writes ``LOADTEST_SEED``.
Custom events: ``WS result`` (create -> result on the portal websocket), ``WS approve->result``
(device answer sent -> portal has the result) and ``SECURITY push caps`` (one per attack
request; a failure there is a security violation).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gevent
import pyotp
import requests
from common import (
    CONTEXT,
    Board,
    Device,
    Seed,
    Waited,
    bearer,
    env_float,
    env_int,
    fire,
    wait_result,
)
from gevent.lock import Semaphore
from locust import FastHttpUser, between, events, task
from locust.exception import StopUser
from radius_user import VpnUser  # noqa: F401 - locust runs every User class found here
from rules import Measured, PushLedger, Thresholds, failed_thresholds, totp_step

HERE = Path(__file__).resolve().parent
SEED = Seed.from_env()
BOARD = Board()
LOAD_POLICY = {
    "max_pushes_per_window": 100,
    "push_window_seconds": 60,
    "max_unanswered_pushes": 100,
    "dedupe_seconds": 0,
}
DENY_RATIO = env_float("LOADTEST_DENY_RATIO", 0.1)
RESULT_TIMEOUT = env_float("LOADTEST_RESULT_TIMEOUT", 75.0)
ENROLL_WAIT_SECONDS = 30.0
ANSWER_ATTEMPTS = 10
LEDGER = os.environ.get("LOADTEST_LEDGER")
TOTP_PATH = "/v1/users/{user_id}/totp"


class Attack:
    """The push-bombing attacker's shared view of its one victim."""

    def __init__(self) -> None:
        self.lock = Semaphore()
        self.victim: str | None = None
        self.device: Device | None = None
        self.ledger: PushLedger | None = None
        self.counts = {"created": 0, "throttled": 0, "blocked": 0, "other": 0}
        self.violations: list[str] = []
        self.fraud_after = env_int("LOADTEST_FRAUD_AFTER_THROTTLES", 20)


ATTACK = Attack()
TOTP = {"available": False, "reason": ""}


@events.test_start.add_listener
def prepare(environment: Any, **_: Any) -> None:
    """Relax the load tenant's fatigue caps, read the attacked tenant's, probe TOTP routes."""
    BOARD.started = time.monotonic()
    host = environment.host.rstrip("/")
    relaxed = requests.patch(
        f"{host}/v1/policy", json=LOAD_POLICY, headers=bearer(SEED.load.admin_key), timeout=10
    )
    relaxed.raise_for_status()
    policy = requests.get(f"{host}/v1/policy", headers=bearer(SEED.bomb.admin_key), timeout=10)
    policy.raise_for_status()
    caps = policy.json()
    ATTACK.ledger = PushLedger(
        caps["max_pushes_per_window"], caps["push_window_seconds"], caps["fraud_block_seconds"]
    )
    paths = requests.get(f"{host}/openapi.json", timeout=10).json().get("paths", {})
    TOTP["available"] = TOTP_PATH in paths and TOTP_PATH + "/verify" in paths
    if not TOTP["available"]:
        TOTP["reason"] = f"the server has no {TOTP_PATH} routes (SPEC §5); TotpUser is disabled"
        print(f"loadtest: {TOTP['reason']}", file=sys.stderr)


class PortalUser(FastHttpUser):
    """An identity portal: create a challenge, wait for its result on the websocket."""

    weight = 1
    wait_time = between(0.5, 1.5)

    @task
    def login(self) -> None:
        user_id = BOARD.pick_user()
        if user_id is None or not self.devices_ready():
            gevent.sleep(0.5)
            return
        body = {"user_id": user_id, "resource": "crm", "app_name": "CRM", "context": CONTEXT}
        started = time.monotonic()
        with self.client.post(
            "/v1/challenges",
            json=body,
            headers=bearer(SEED.load.portal_key),
            name="/v1/challenges",
            catch_response=True,
        ) as resp:
            if resp.status_code != 201:
                resp.failure(f"{resp.status_code}: {resp.text[:200]}")
                return
            created = resp.json()
        challenge_id = created["id"]
        BOARD.numbers[challenge_id] = created["number"]
        created_at = time.time()
        waited = wait_result(created["watch_url"], {}, RESULT_TIMEOUT)
        answer = BOARD.forget(challenge_id)
        self._judge(waited, answer, started)
        if LEDGER:
            BOARD.record(challenge_id, created_at, answer, waited)

    def devices_ready(self) -> bool:
        """Every device enrolled (or 30 s passed): a few early users would hit the push cap."""
        if len(BOARD.ready_users) >= DeviceUser.fixed_count:
            return True
        return time.monotonic() - BOARD.started > ENROLL_WAIT_SECONDS

    def _judge(self, waited: Waited, answer: tuple[str, float] | None, started: float) -> None:
        if waited.result is None or waited.result_at is None:
            fire(self.environment, "WS", "WS result", 0, waited.error)
            return
        elapsed = (waited.result_at - started) * 1000
        status = waited.result["status"]
        expected = {"approve": "approved", "deny": "denied"}.get(answer[0]) if answer else None
        error = None if status == expected else f"result {status}, device answered {answer}"
        fire(self.environment, "WS", "WS result", elapsed, error)
        if answer is not None and error is None:
            fire(
                self.environment, "WS", "WS approve->result", (waited.result_at - answer[1]) * 1000
            )


class DeviceUser(FastHttpUser):
    """A phone: enrolls once, then polls its pending challenges, acks and answers them signed."""

    fixed_count = env_int("LOADTEST_DEVICES", 12)
    wait_time = between(0.3, 0.8)

    def on_start(self) -> None:
        self.user_id = BOARD.new_user_id("lt", SEED.run_id)
        self.device = Device(SEED, random.choice(SEED.platforms))
        self.device.enroll(self.client, SEED.load.portal_key, self.user_id)
        self.answered: set[str] = set()
        BOARD.ready_users.append(self.user_id)

    def on_stop(self) -> None:
        if self.user_id in BOARD.ready_users:
            BOARD.ready_users.remove(self.user_id)

    @task
    def answer_pending(self) -> None:
        listed = self.client.get(
            "/v1/device/challenges", headers=self.device.headers, name="/v1/device/challenges"
        )
        if listed.status_code != 200:
            return
        for item in listed.json()["items"]:
            challenge_id = item["id"]
            number = BOARD.numbers.get(challenge_id)
            if challenge_id in self.answered or (item["number_matching"] and number is None):
                continue  # answered already, or the portal has not shown its number yet
            self.answer(item, number)

    def answer(self, item: dict[str, Any], number: str | None) -> None:
        challenge_id = item["id"]
        path = f"/v1/device/challenges/{challenge_id}"
        headers = self.device.headers
        self.client.post(path + "/ack", headers=headers, name="/v1/device/challenges/[id]/ack")
        self.client.get(path, headers=headers, name="/v1/device/challenges/[id]")
        decision = "deny" if random.random() < DENY_RATIO else "approve"
        self.answered.add(challenge_id)
        statuses = BOARD.answer_statuses.setdefault(challenge_id, [])
        for _ in range(ANSWER_ATTEMPTS):  # an app retries an answer the service could not take
            body = self.device.answer_body(
                item["nonce"], decision, number if decision == "approve" else None
            )
            BOARD.answers[challenge_id] = (decision, time.monotonic())
            with self.client.post(
                path + "/response",
                json=body,
                headers=headers,
                name="/v1/device/challenges/[id]/response",
                catch_response=True,
            ) as resp:
                statuses.append(resp.status_code)
                want = "approved" if decision == "approve" else "denied"
                if resp.status_code == 200 and resp.json().get("status") == want:
                    return
                if resp.status_code == 409 and any(s in (0, 503) for s in statuses[:-1]):
                    resp.success()  # an earlier attempt whose reply was lost may have won
                    return
                resp.failure(f"{resp.status_code}: {resp.text[:200]}")
                if resp.status_code not in (0, 503):
                    return
                pause = resp.headers.get("Retry-After") if resp.headers else None
            gevent.sleep(min(float(pause or 0.5), 2.0))


class TotpUser(FastHttpUser):
    """A user without a phone: enrolls TOTP, confirms it, verifies codes, checks replays."""

    fixed_count = env_int("LOADTEST_TOTP_USERS", 2)
    wait_time = between(0.5, 1.0)
    accounts_per_user = env_int("LOADTEST_TOTP_ACCOUNTS", 15)

    def on_start(self) -> None:
        if not TOTP["available"]:
            raise StopUser()
        self.accounts: list[dict[str, Any]] = []
        for _ in range(self.accounts_per_user):
            self.accounts.append(self.enroll(BOARD.new_user_id("totp", SEED.run_id)))

    def _post(self, path: str, body: dict[str, Any] | None, name: str) -> Any:
        return self.client.post(path, json=body, headers=bearer(SEED.load.portal_key), name=name)

    def enroll(self, user_id: str) -> dict[str, Any]:
        base = TOTP_PATH.format(user_id=user_id)
        secret = self._post(base, None, "/v1/users/[id]/totp").json()["secret"]
        totp = pyotp.TOTP(secret)
        step = totp_step(None, time.time())  # the oldest acceptable step, then the next
        assert step is not None
        codes = [totp.at(step * 30), totp.at((step + 1) * 30)]
        self._post(base + "/confirm", {"codes": codes}, "/v1/users/[id]/totp/confirm")
        return {"base": base, "totp": totp, "last_step": step + 1, "last_code": None}

    @task
    def verify(self) -> None:
        ready = [a for a in self.accounts if totp_step(a["last_step"], time.time()) is not None]
        if not ready:
            return
        account = random.choice(ready)
        if account["last_code"] and random.random() < 0.2:
            self.replay(account)
            return
        step = totp_step(account["last_step"], time.time())
        assert step is not None
        code = account["totp"].at(step * 30)
        # the step is spent whatever the answer; a code is only replayed once it was accepted
        account["last_step"], account["last_code"] = step, None
        with self.client.post(
            account["base"] + "/verify",
            json={"code": code},
            headers=bearer(SEED.load.portal_key),
            name="/v1/users/[id]/totp/verify",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200 or resp.json().get("result") != "allow":
                resp.failure(f"{resp.status_code}: {resp.text[:200]}")
            else:
                account["last_code"] = code

    def replay(self, account: dict[str, Any]) -> None:
        """Send the last accepted code again (once: a replay may count as a failed attempt)."""
        code, account["last_code"] = account["last_code"], None
        with self.client.post(
            account["base"] + "/verify",
            json={"code": code},
            headers=bearer(SEED.load.portal_key),
            name="/v1/users/[id]/totp/verify [replay]",
            catch_response=True,
        ) as resp:
            if resp.status_code == 422 and resp.json().get("code") == "code_replayed":
                resp.success()
            else:
                resp.failure(f"replay answered {resp.status_code}: {resp.text[:200]}")


class PushBomber(FastHttpUser):
    """An attacker who knows one victim's password and floods them with pushes (MFA fatigue).

    Every 201 past ``max_pushes_per_window`` (or after the victim reported fraud) is a
    security violation; 429 ``push_throttled`` and 423 ``push_blocked`` are the expected
    answers. After some throttled attempts the victim's phone reports fraud.
    """

    fixed_count = env_int("LOADTEST_BOMBERS", 2)
    wait_time = between(0.05, 0.2)

    def on_start(self) -> None:
        with ATTACK.lock:
            if ATTACK.victim is None:
                victim = BOARD.new_user_id("victim", SEED.run_id)
                device = Device(SEED, "none")
                device.enroll(self.client, SEED.bomb.portal_key, victim)
                ATTACK.victim, ATTACK.device = victim, device

    @task
    def bomb(self) -> None:
        assert ATTACK.ledger is not None
        body = {
            "user_id": ATTACK.victim,
            "resource": f"vpn-{uuid.uuid4().hex[:8]}",
            "app_name": "VPN",
            "context": CONTEXT,
        }
        sent = time.monotonic()
        with self.client.post(
            "/v1/challenges",
            json=body,
            headers=bearer(SEED.bomb.portal_key),
            name="/v1/challenges [push bomb]",
            catch_response=True,
        ) as resp:
            received = time.monotonic()
            status = resp.status_code
            violation = ATTACK.ledger.created(sent, received) if status == 201 else None
            kind = {201: "created", 429: "throttled", 423: "blocked"}.get(status, "other")
            ATTACK.counts[kind] += 1
            if status in (201, 429, 423):
                resp.success()
            else:
                resp.failure(f"{status}: {resp.text[:200]}")
        if violation:
            ATTACK.violations.append(violation)
        fire(
            self.environment, "SECURITY", "SECURITY push caps", (received - sent) * 1000, violation
        )
        if ATTACK.counts["throttled"] >= ATTACK.fraud_after and ATTACK.ledger.fraud is None:
            self.report_fraud()

    def report_fraud(self) -> None:
        """The victim taps "this wasn't me" on one of the pending pushes."""
        with ATTACK.lock:
            device = ATTACK.device
            if ATTACK.ledger is None or ATTACK.ledger.fraud is not None or device is None:
                return
            listed = self.client.get(
                "/v1/device/challenges", headers=device.headers, name="/v1/device/challenges"
            )
            items = listed.json().get("items", []) if listed.status_code == 200 else []
            if not items:
                return
            item = items[0]
            sent = time.monotonic()
            with self.client.post(
                f"/v1/device/challenges/{item['id']}/response",
                json=device.answer_body(item["nonce"], "fraud", None),
                headers=device.headers,
                name="/v1/device/challenges/[id]/response [fraud]",
                catch_response=True,
            ) as resp:
                if resp.status_code == 200 and resp.json().get("status") == "fraud":
                    ATTACK.ledger.fraud_reported(sent, time.monotonic())
                else:
                    resp.failure(f"{resp.status_code}: {resp.text[:200]}")


def measure(environment: Any) -> Measured:
    """The run's numbers from locust's statistics."""
    stats = environment.stats
    entries = [e for (name, method), e in stats.entries.items() if method != "SECURITY"]
    create = stats.entries.get(("/v1/challenges", "POST"))
    approve = stats.entries.get(("WS approve->result", "WS"))
    result = stats.entries.get(("WS result", "WS"))
    return Measured(
        requests=sum(e.num_requests for e in entries),
        failures=sum(e.num_failures for e in entries),
        p99_create_ms=create.get_response_time_percentile(0.99) if create else None,
        p99_approve_to_result_ms=approve.get_response_time_percentile(0.99) if approve else None,
        results=(result.num_requests - result.num_failures) if result else 0,
        security_violations=len(ATTACK.violations),
    )


@events.quitting.add_listener
def judge(environment: Any, **_: Any) -> None:
    """Apply the thresholds: the process exits 1 when one is broken."""
    limits = Thresholds.load(HERE / "thresholds.toml")
    run = measure(environment)
    broken = failed_thresholds(limits, run)
    summary = {
        "passed": not broken,
        "broken": broken,
        "measured": {**asdict(run), "error_rate": round(run.error_rate, 5)},
        "thresholds": asdict(limits),
        "push_bomb": {
            **ATTACK.counts,
            "fraud_reported": bool(ATTACK.ledger and ATTACK.ledger.fraud),
        },
        "security_violations": ATTACK.violations[:20],
        "totp": TOTP,
        "platforms": list(SEED.platforms),
    }
    print("loadtest summary: " + json.dumps(summary, indent=2), file=sys.stderr)
    out = environment.parsed_options and getattr(environment.parsed_options, "csv_prefix", None)
    if out:
        Path(f"{out}_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    environment.process_exit_code = 1 if broken else 0
    if LEDGER:
        with open(LEDGER, "w") as ledger:
            for entry in BOARD.ledger:
                ledger.write(json.dumps(entry) + "\n")
