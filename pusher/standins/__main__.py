"""Run one stand-in in the foreground for the demo and load tests.

    python -m pusher.standins apns|fcm [--host 127.0.0.1] [--port 0] --state-dir DIR

Writes a fresh CA (``DIR/ca.pem``) and server certificate, plus the credentials a client
needs (APNs: ``DIR/AuthKey_<key id>.p8``; FCM: ``DIR/service-account.json`` whose
``token_uri`` is this server), then prints one JSON line with the port and file paths and
serves until SIGINT / SIGTERM. The control API (``/_standin/...``) is on the same port.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from pusher.standins.apns import ApnsStandin
from pusher.standins.app import Standin
from pusher.standins.credentials import make_apns_key, make_service_account
from pusher.standins.fcm import FcmStandin
from pusher.standins.runner import serve
from pusher.standins.tls import make_tls


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pusher.standins", description=__doc__)
    parser.add_argument("service", choices=("apns", "fcm"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--project-id", default="pushgate-demo", help="FCM project id")
    parser.add_argument("--topic", action="append", help="APNs topics to allow (default: any)")
    return parser


async def _run(args: argparse.Namespace) -> None:
    state: Path = args.state_dir
    tls = make_tls(state)
    info: dict[str, Any] = {"service": args.service, "host": args.host, "ca_file": str(tls.ca_file)}
    standin: Standin
    if args.service == "apns":
        key = make_apns_key()
        apns = ApnsStandin(topics=args.topic)
        apns.trust(key)
        info |= {"key_file": str(key.write(state)), "key_id": key.key_id, "team_id": key.team_id}
        standin = apns
    else:
        standin = FcmStandin()

    def ready(port: int) -> None:
        url = f"https://{args.host}:{port}"
        info.update(port=port, url=url)
        if isinstance(standin, FcmStandin):
            account = make_service_account(
                state / "service-account.json", token_uri=f"{url}/token", project_id=args.project_id
            )
            standin.trust(account)
            info.update(service_account_file=str(account.path), project_id=account.project_id)
        print(json.dumps(info), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await serve(standin, tls, args.host, args.port, stop, on_ready=ready)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    asyncio.run(_run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
