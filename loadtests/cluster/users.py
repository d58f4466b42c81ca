"""The load-test users of ``loadtests/locustfile.py`` for the cluster rig, plus a log of every
request (when it ended, its status, whether a 503 carried ``Retry-After``) for the per-fault
report. Runs under locust (gevent): imports nothing of the asyncio app."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import locustfile
from locust import events
from locustfile import DeviceUser, PortalUser, PushBomber, TotpUser  # noqa: F401

#: ended challenges stay readable long enough for the rig to read them all back
locustfile.LOAD_POLICY["result_retention_seconds"] = 3600

REQUEST_LOG = open(os.environ["LOADTEST_REQUEST_LOG"], "w", buffering=1)  # noqa: SIM115


@events.request.add_listener
def log_request(
    request_type: str,
    name: str,
    response_time: float,
    response: Any = None,
    exception: BaseException | None = None,
    **_: Any,
) -> None:
    """One JSON line per request or custom event."""
    headers = getattr(response, "headers", None) if response is not None else None
    entry = {
        "t": time.time(),
        "type": request_type,
        "name": name,
        "ms": response_time,
        "ok": exception is None,
        "status": getattr(response, "status_code", None),
        "retry_after": bool(headers and headers.get("Retry-After")),
    }
    REQUEST_LOG.write(json.dumps(entry) + "\n")
