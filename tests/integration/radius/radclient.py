"""FreeRADIUS's own clients (``radclient``, ``radtest`` from Debian's freeradius-utils) for tests.

They are the NAS in these tests: real RADIUS code nobody here wrote, which checks the
Response Authenticator and the Message-Authenticator of every reply it accepts.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

APT_LOCK = "/tmp/apt.lock"
_RECEIVED = re.compile(r"^Received (\S+) Id (\d+) from ")
_NUMBERED = re.compile(r"^\((\d+)\) \S+ response code (\d+)")
_ATTRIBUTE = re.compile(r"^\s+([A-Za-z0-9-]+) = (.*)$")

Attributes = Mapping[str, str]


@dataclass
class Reply:
    """One reply as radclient printed it; ``code`` is None when nothing valid came back."""

    code: str | None
    attributes: dict[str, list[str]] = field(default_factory=dict)
    output: str = ""

    def first(self, name: str) -> str | None:
        values = self.attributes.get(name)
        return values[0] if values else None

    @property
    def message(self) -> str:
        return self.first("Reply-Message") or ""

    @property
    def state(self) -> str | None:
        """The State as radclient prints octets: ``0x`` and hex."""
        return self.first("State")


def _install() -> str | None:
    """Install freeradius-utils with apt (under the shared lock); None when done, else why not."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None or shutil.which("flock") is None:
        return "not root with apt-get and flock"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["flock", APT_LOCK, "apt-get", "install", "-y", "-qq", "freeradius-utils"]
    for attempt in (install, ["flock", APT_LOCK, "apt-get", "update", "-qq"], install):
        done = subprocess.run(attempt, env=env, capture_output=True, text=True, timeout=900)
        if attempt is install and done.returncode == 0:
            return None
    return f"apt-get install freeradius-utils failed: {done.stderr[-500:]}"


def require_radclient() -> None:
    """Make sure radclient and radtest exist (install them when allowed), else skip (fail on CI)."""
    if shutil.which("radclient") and shutil.which("radtest"):
        return
    why = _install()
    if why is not None or not shutil.which("radclient"):
        message = (
            "Debian's freeradius-utils (radclient, radtest) is not installed and could not be "
            f"installed ({why}): run `apt-get install freeradius-utils` as root"
        )
        if os.environ.get("CI") == "true":  # CI runs these tests; it never skips them
            pytest.fail(message)
        pytest.skip(message)


def _quote(name: str, value: str) -> str:
    if value.startswith("0x") or name in ("Message-Authenticator", "State"):
        return f"{name} = {value}"
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{name} = "{escaped}"'


def packet_text(attributes: Attributes) -> str:
    """radclient's input for one packet (one ``Name = value`` per line)."""
    return "\n".join(_quote(name, value) for name, value in attributes.items()) + "\n"


def parse_replies(output: str) -> dict[int, Reply]:
    """Replies by packet number (``-F`` output), or under 0 for a single packet."""
    replies: dict[int, Reply] = {}
    number: int | None = None
    current: Reply | None = None
    for line in output.splitlines():
        numbered = _NUMBERED.match(line)
        if numbered:
            number = int(numbered.group(1))
            continue
        received = _RECEIVED.match(line)
        if received:
            current = Reply(received.group(1), output=output)
            replies[number if number is not None else 0] = current
            number = None
            continue
        attribute = _ATTRIBUTE.match(line)
        if attribute and current is not None:
            name, value = attribute.groups()
            current.attributes.setdefault(name, []).append(value.strip('"'))
        elif not line.startswith(("\t", " ")):
            current = None
    return replies


async def _run(argv: Sequence[str], stdin: str | None, limit: float) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,  # its verdict lines would interleave with stdout
    )
    try:
        out, _ = await asyncio.wait_for(
            process.communicate(stdin.encode() if stdin is not None else None), limit
        )
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return out.decode(errors="replace")


async def radclient(
    port: int,
    secret: str,
    attributes: Attributes,
    *,
    timeout: float = 5.0,
    retries: int = 1,
    code: str = "auth",
) -> Reply:
    """Send one packet with ``radclient -x``; the reply it accepted, or ``code=None``."""
    argv = ["radclient", "-x", "-t", str(timeout), "-r", str(retries)]
    argv += [f"127.0.0.1:{port}", code, secret]
    output = await _run(argv, packet_text(attributes), timeout * (retries + 1) + 10)
    return parse_replies(output).get(0) or Reply(None, output=output)


async def radclient_parallel(
    port: int,
    secret: str,
    packets: Sequence[Attributes],
    directory: Path,
    *,
    timeout: float,
    retries: int = 1,
) -> list[Reply]:
    """Send every packet at once (``-f FILE -p N``); the replies in packet order."""
    path = directory / "packets.txt"
    path.write_text("\n".join(packet_text(p) for p in packets))
    argv = ["radclient", "-x", "-F", "-f", str(path), "-p", str(len(packets))]
    argv += ["-t", str(timeout), "-r", str(retries), f"127.0.0.1:{port}", "auth", secret]
    output = await _run(argv, None, timeout * (retries + 1) + 30)
    replies = parse_replies(output)
    return [replies.get(n) or Reply(None, output=output) for n in range(len(packets))]


async def radtest(port: int, secret: str, user: str, password: str) -> Reply:
    """``radtest USER PASSWORD 127.0.0.1:PORT 0 SECRET 0 127.0.0.1`` (PAP, signed)."""
    argv = ["radtest", user, password, f"127.0.0.1:{port}", "0", secret, "0", "127.0.0.1"]
    output = await _run(argv, None, 60)
    return parse_replies(output).get(0) or Reply(None, output=output)
