"""One push worker process with the APNs and FCM providers pointed at local stand-ins.

    python -m benchmarks.worker_runner CONFIG_JSON

CONFIG_JSON holds ``ready_file`` (written once the worker runs), ``apns`` (key_file,
key_id, team_id, topic, url, ca_file) and ``fcm`` (service_account_file, project_id, url,
ca_file). Settings come from ``PUSHGATE_*`` as for
``pushgate worker``; runs on uvloop until SIGTERM, then stops gracefully.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import uvloop

from pusher.providers.apns import ApnsProvider
from pusher.providers.base import PushProvider
from pusher.providers.fcm import FcmProvider
from pusher.worker import Worker
from pushgate.logs import configure_logging
from pushgate.settings import load_settings


def providers(config: dict[str, Any]) -> dict[str, PushProvider]:
    built: dict[str, PushProvider] = {}
    if "apns" in config:
        apns = config["apns"]
        built["apns"] = ApnsProvider(
            key=Path(apns["key_file"]).read_text(),
            key_id=apns["key_id"],
            team_id=apns["team_id"],
            topic=apns["topic"],
            endpoint=apns["url"],
            ca_file=apns["ca_file"],
        )
    if "fcm" in config:
        fcm = config["fcm"]
        built["fcm"] = FcmProvider(
            service_account_file=fcm["service_account_file"],
            project_id=fcm["project_id"],
            endpoint=fcm["url"],
            ca_file=fcm["ca_file"],
        )
    return built


async def run(config: dict[str, Any]) -> None:
    settings = load_settings()
    worker = Worker(settings, providers=providers(config))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await worker.start()
    await asyncio.to_thread(Path(config["ready_file"]).write_text, worker.name)
    await stop.wait()
    await worker.stop(2.0)


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    configure_logging(os.environ.get("PUSHGATE_LOG_LEVEL", "info"), "json")
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run(config))


if __name__ == "__main__":
    main()
