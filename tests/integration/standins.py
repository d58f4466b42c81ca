"""Running the local APNs and FCM stand-ins for worker tests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pusher.providers.apns import ApnsProvider
from pusher.providers.fcm import FcmProvider
from pusher.standins.apns import ApnsStandin
from pusher.standins.credentials import ApnsKey, ServiceAccount, make_apns_key, make_service_account
from pusher.standins.fcm import FcmStandin
from pusher.standins.recorder import Recorder
from pusher.standins.runner import StandinThread
from pusher.standins.tls import TlsMaterial, make_tls

TOPIC = "com.example.authenticator"
PROJECT = "pushgate-test"


@dataclass
class Standins:
    """Both stand-ins, their credentials and TLS material."""

    tls: TlsMaterial
    apns: ApnsStandin
    apns_thread: StandinThread
    apns_key: ApnsKey
    fcm: FcmStandin
    fcm_thread: StandinThread
    account: ServiceAccount

    def reset(self) -> None:
        for standin in (self.apns, self.fcm):
            standin.faults.reset()
            standin.received.clear()

    def providers(self, *, timeout: float = 5.0) -> dict[str, ApnsProvider | FcmProvider]:
        """Fresh real providers (aioapns, firebase-admin) pointed at the stand-ins."""
        return {
            "apns": ApnsProvider(
                key=self.apns_key.pem,
                key_id=self.apns_key.key_id,
                team_id=self.apns_key.team_id,
                topic=TOPIC,
                endpoint=self.apns_thread.url,
                ca_file=self.tls.ca_file,
                timeout=timeout,
            ),
            "fcm": FcmProvider(
                service_account_file=self.account.path,
                endpoint=self.fcm_thread.url,
                ca_file=self.tls.ca_file,
                timeout=timeout,
            ),
        }


def running_standins(directory: Path) -> Iterator[Standins]:
    """Start both stand-ins in background threads; stop them afterwards."""
    tls = make_tls(directory / "tls")
    apns = ApnsStandin(topics={TOPIC})
    key = make_apns_key()
    apns.trust(key)
    apns_thread = StandinThread(apns, tls)
    apns_thread.start()
    fcm = FcmStandin()
    fcm_thread = StandinThread(fcm, tls)
    fcm_thread.start()
    account = make_service_account(
        directory / "service-account.json", token_uri=f"{fcm_thread.url}/token", project_id=PROJECT
    )
    fcm.trust(account)
    try:
        yield Standins(tls, apns, apns_thread, key, fcm, fcm_thread, account)
    finally:
        apns_thread.stop()
        fcm_thread.stop()


async def until_nothing_in_progress(recorder: Recorder, timeout: float = 5.0) -> None:
    """Wait until the stand-in answered or dropped every request it received."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while recorder.in_progress:
        if loop.time() > deadline:
            raise AssertionError(f"{recorder.in_progress} requests still in progress")
        await asyncio.sleep(0.02)
