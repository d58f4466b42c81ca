"""The floor for push sends/s: the client library alone, no Redis and no worker around it.

    python -m benchmarks.push_floor CONFIG_JSON

CONFIG_JSON holds ``provider`` (``apns`` | ``fcm``), ``count`` and ``concurrency`` (sends in
flight at once, as the worker's ``PUSHGATE_WORKER_CONCURRENCY``), ``tokens`` to send to, plus
the stand-in's details as for ``benchmarks.worker_runner``.

The library is used the way its documentation shows. aioapns: the ``APNs`` client with token
auth, pointed at the stand-in through its protocol class (the one way aioapns allows).
firebase-admin: ``messaging.send_each_async`` with its default client, the stand-in's CA
through ``SSL_CERT_FILE`` / ``REQUESTS_CA_BUNDLE`` and its URL through
``_MessagingService.FCM_URL``. One warm-up send opens the connection and fetches the token,
then the process prints ``ready``; after a line on stdin, ``count`` sends run and it prints
one JSON line with the CPU seconds it spent on them.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import ssl
import sys
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvloop

Send = Callable[[str, int], Awaitable[bool]]


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _apns_sender(config: dict[str, Any]) -> Send:
    from aioapns import APNs, NotificationRequest, PushType
    from aioapns.connection import APNsProductionClientProtocol

    apns = config["apns"]
    url = urlsplit(apns["url"])

    class StandinProtocol(APNsProductionClientProtocol):
        APNS_SERVER = url.hostname or "127.0.0.1"
        APNS_PORT = url.port or 443

    context = ssl.create_default_context(cafile=apns["ca_file"])
    client = APNs(
        key=apns["key"],
        key_id=apns["key_id"],
        team_id=apns["team_id"],
        topic=apns["topic"],
        ssl_context=context,
    )
    client.pool.protocol_class = StandinProtocol
    expires = int(time.time()) + 300

    async def send(token: str, i: int) -> bool:
        request = NotificationRequest(
            device_token=token,
            message={
                "aps": {
                    "alert": {"title": "Sign-in request", "body": "Salesforce · Berlin, DE"},
                    "sound": "default",
                    "category": "PUSHGATE_CHALLENGE",
                },
                "challenge_id": f"ch{i:08d}",
                "tenant": "tn_floor",
            },
            notification_id=str(uuid.uuid4()),
            time_to_live=expires - int(time.time()),
            priority=10,
            collapse_key=f"ch{i:08d}",
            push_type=PushType.ALERT,
        )
        result = await client.send_notification(request)
        return bool(result.is_successful)

    return send


async def _fcm_sender(config: dict[str, Any]) -> Send:
    fcm = config["fcm"]
    os.environ["SSL_CERT_FILE"] = fcm["ca_file"]
    os.environ["REQUESTS_CA_BUNDLE"] = fcm["ca_file"]
    import firebase_admin
    from firebase_admin import credentials, messaging

    messaging._MessagingService.FCM_URL = fcm["url"] + "/v1/projects/{0}/messages:send"
    app = firebase_admin.initialize_app(
        credentials.Certificate(fcm["service_account_file"]),
        {"projectId": fcm["project_id"]},
        name="floor",
    )
    expires = int(time.time()) + 300

    async def send(token: str, i: int) -> bool:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            message = messaging.Message(
                token=token,
                data={
                    "challenge_id": f"ch{i:08d}",
                    "tenant": "tn_floor",
                    "app_name": "Salesforce",
                    "location": "Berlin, DE",
                    "expires_at": str(expires),
                },
                notification=messaging.Notification(
                    title="Sign-in request", body="Salesforce · Berlin, DE"
                ),
                android=messaging.AndroidConfig(
                    priority="high",
                    ttl=expires - int(time.time()),
                    collapse_key=f"ch{i:08d}",
                    notification=messaging.AndroidNotification(tag=f"ch{i:08d}"),
                ),
            )
        batch = await messaging.send_each_async([message], app=app)
        return bool(batch.success_count == 1)

    return send


async def run(config: dict[str, Any]) -> None:
    sender = _apns_sender if config["provider"] == "apns" else _fcm_sender
    send = await sender(config)
    tokens: list[str] = config["tokens"]
    if not await send(tokens[0], -1):
        raise RuntimeError("the warm-up send failed")
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    slots = asyncio.Semaphore(int(config["concurrency"]))
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        async with slots:
            if not await send(tokens[i % len(tokens)], i):
                failures += 1

    cpu_before, started = _cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(int(config["count"]))))
    report = {
        "cpu_seconds": _cpu_seconds() - cpu_before,
        "seconds": time.perf_counter() - started,
        "failures": failures,
    }
    print(json.dumps(report), flush=True)


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    if "apns" in config:
        config["apns"]["key"] = Path(config["apns"]["key_file"]).read_text()
    uvloop.run(run(config))


if __name__ == "__main__":
    main()
