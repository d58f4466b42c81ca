"""Real ``pushgate`` processes for tests: CLI calls, gateways, workers and stand-ins."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import aiohttp

from pushgate.devicekit.authenticator import SoftAuthenticator
from pushgate.devicekit.client import DeviceClient
from pushgate.embedded import free_port
from tests.conftest import TEST_SECRET_KEY
from tests.portal import Portal

PUSHGATE = (sys.executable, "-m", "pushgate.cli")
STANDINS = (sys.executable, "-m", "pusher.standins")


def base_env(redis_url: str, **settings: object) -> dict[str, str]:
    """The environment of a pushgate process: ours only, never the caller's PUSHGATE_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHGATE_")}
    env.update(
        PUSHGATE_REDIS_URL=redis_url,
        PUSHGATE_SECRET_KEY=TEST_SECRET_KEY,
        PUSHGATE_SHARDS="4",
        PUSHGATE_WEBAUTHN_RP_ID="localhost",
        PUSHGATE_LOG_LEVEL="info",
    )
    env.update({f"PUSHGATE_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def cli_json(env: dict[str, str], cwd: Path, *args: str) -> dict[str, Any]:
    """Run one ``pushgate`` CLI command and parse the JSON object it prints."""
    done = subprocess.run(
        [*PUSHGATE, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    reply: dict[str, Any] = json.loads(done.stdout)
    return reply


class Process:
    """A child process whose output goes to a log file; always reaped by :meth:`close`."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.log_path = cwd / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log
        )

    def terminate(self) -> None:
        """Send SIGTERM (the graceful drain signal)."""
        self.popen.send_signal(signal.SIGTERM)

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    async def wait(self, timeout: float) -> int | None:
        """The exit code, or None if the process still runs after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            code = self.popen.poll()
            if code is not None:
                return code
            await asyncio.sleep(0.05)
        return self.popen.poll()

    def log_text(self) -> str:
        """What the process wrote so far."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        """Kill the process if it still runs, reap it and close its log."""
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(timeout=10)
        self._log.close()


@contextmanager
def processes() -> Iterator[list[Process]]:
    """A list to put started processes in; every one is reaped on exit."""
    started: list[Process] = []
    try:
        yield started
    finally:
        for process in started:
            process.close()


async def wait_until(
    check: Callable[[], Awaitable[bool]],
    what: str,
    timeout: float = 15.0,
    *,
    alive: Process | None = None,
) -> None:
    """Poll ``check`` every 50 ms until it is true; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if alive is not None and not alive.running:
            raise AssertionError(
                f"{alive.name} exited while waiting for {what}:\n{alive.log_text()}"
            )
        if await check():
            return
        await asyncio.sleep(0.05)
    detail = f"\n{alive.log_text()}" if alive is not None else ""
    raise AssertionError(f"timed out waiting for {what}{detail}")


async def status_of(session: aiohttp.ClientSession, url: str) -> int | None:
    """The HTTP status of ``GET url``, or None when nothing answers."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
            return resp.status
    except (aiohttp.ClientError, TimeoutError):
        return None


async def start_gateway(
    started: list[Process],
    session: aiohttp.ClientSession,
    env: dict[str, str],
    cwd: Path,
    port: int,
    name: str = "gateway",
) -> Process:
    """``pushgate serve --port PORT``, returned once ``/readyz`` answers 200."""
    process = Process(name, [*PUSHGATE, "serve", "--port", str(port)], env, cwd)
    started.append(process)
    url = f"http://127.0.0.1:{port}/readyz"

    async def ready() -> bool:
        return await status_of(session, url) == 200

    await wait_until(ready, f"{name} ready", alive=process)
    return process


async def start_worker(
    started: list[Process],
    session: aiohttp.ClientSession,
    env: dict[str, str],
    cwd: Path,
    name: str,
) -> tuple[Process, int]:
    """``pushgate worker`` with its metrics port, returned once ``/healthz`` answers."""
    port = free_port()
    process = Process(
        name, [*PUSHGATE, "worker"], {**env, "PUSHGATE_WORKER_METRICS_PORT": str(port)}, cwd
    )
    started.append(process)

    async def healthy() -> bool:
        return await status_of(session, f"http://127.0.0.1:{port}/healthz") == 200

    await wait_until(healthy, f"{name} healthy", alive=process)
    return process, port


async def start_standin(started: list[Process], cwd: Path, service: str) -> dict[str, Any]:
    """``python -m pusher.standins apns|fcm``; returns the JSON line it prints (port, URL, CA,
    and the credentials a client needs)."""
    state = cwd / f"{service}-standin"
    process = Process(
        f"{service}-standin",
        [*STANDINS, service, "--state-dir", str(state)],
        dict(os.environ),
        cwd,
    )
    started.append(process)

    info: dict[str, Any] = {}

    async def printed() -> bool:
        for line in process.log_text().splitlines():
            if line.startswith("{") and line.endswith("}"):
                info.update(json.loads(line))
        return "port" in info

    await wait_until(printed, f"the {service} stand-in", alive=process)
    return info


async def enroll_devices(portal: Portal, origin: str, users: list[str]) -> list[DeviceClient]:
    """One software device per user, enrolled through ``portal``'s gateway (origin ``origin``)."""
    devices = []
    for user_id in users:
        device = DeviceClient(
            portal.base_url,
            session=portal.session,
            authenticator=SoftAuthenticator.generate(origin=origin, rp_id="localhost"),
        )
        await device.enroll(await portal.enrollment_code(user_id))
        devices.append(device)
    return devices
