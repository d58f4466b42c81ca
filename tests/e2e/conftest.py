"""Fixtures for the browser tests: the real ``pushgate demo`` command and headless Chromium."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pushgate.embedded import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
START_TIMEOUT = 30.0


@dataclass
class Demo:
    """A running ``pushgate demo``: its URLs and keys as it printed them."""

    base_url: str
    portal_url: str
    phone_url: str
    portal_key: str
    admin_key: str
    output: list[str] = field(default_factory=list)


def _command(port: int) -> list[str]:
    script = Path(sys.executable).with_name("pushgate")
    if script.exists():
        return [str(script), "demo", "--port", str(port)]
    return [sys.executable, "-m", "pushgate.cli", "demo", "--port", str(port)]


def _read_banner(process: subprocess.Popen[str]) -> list[str]:
    """Lines the demo prints up to "Press Ctrl-C to stop." (a thread keeps reads bounded)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, daemon=True, name="demo-stdout").start()
    seen: list[str] = []
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None:
            break
        seen.append(line)
        if line.startswith("Press Ctrl-C"):
            return seen
    raise RuntimeError("pushgate demo did not start:\n" + "\n".join(seen))


def _value(lines: list[str], label: str) -> str:
    for line in lines:
        name, _, value = line.strip().partition(":")
        if name.strip() == label:
            return value.strip().split()[0]
    raise AssertionError(f"the demo banner has no {label!r} line: {lines}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """``pushgate demo --port N`` in a subprocess with its own embedded Redis."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSHGATE_")}
    log = tmp_path_factory.mktemp("demo") / "stderr.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            _command(port),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
            cwd=tmp_path_factory.mktemp("cwd"),
        )
        try:
            try:
                lines = _read_banner(process)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}\nstderr:\n{log.read_text()}") from None
            yield Demo(
                base_url=f"http://localhost:{port}",
                portal_url=_value(lines, "portal page"),
                phone_url=_value(lines, "phone simulator"),
                portal_key=_value(lines, "portal API key"),
                admin_key=_value(lines, "admin API key"),
                output=lines,
            )
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            for thread in threading.enumerate():
                if thread.name == "demo-stdout":
                    thread.join(timeout=5)
            assert process.stdout is not None
            process.stdout.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium through Playwright (never a downloaded browser).

    Module-scoped: the sync API keeps an event loop running on this thread while it is
    open, so it must be closed before any asyncio test of another module runs.
    """
    if not CHROMIUM.exists():
        pytest.skip(
            f"Debian chromium not installed: {CHROMIUM} is missing (apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: docs/screenshots with PUSHGATE_E2E_SCREENSHOTS=1, else a temp dir."""
    if os.environ.get("PUSHGATE_E2E_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")


@dataclass
class Pages:
    """The portal page and one phone simulator page."""

    portal: Any
    phone: Any
    errors: list[str]


@pytest.fixture
def pages(browser: Any, demo: Demo, request: pytest.FixtureRequest) -> Iterator[Pages]:
    """The portal and a phone named after the test, each in its own (visible) window.

    Two contexts rather than two tabs: a background tab is hidden, which throttles it and
    (rightly) keeps the simulated phone from reporting the request as seen.
    """
    contexts = [
        browser.new_context(viewport={"width": 1000, "height": 860}, locale="en-US")
        for _ in range(2)
    ]
    errors: list[str] = []
    portal, phone = (context.new_page() for context in contexts)
    for context, page in zip(contexts, (portal, phone), strict=True):
        context.set_default_timeout(10_000)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
    phone_name = "-".join(request.node.name.split("_")[1:3]).lower()
    portal.goto(demo.portal_url)
    phone.goto(f"{demo.phone_url}?phone={phone_name}")
    yield Pages(portal, phone, errors)
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors on the demo pages: {errors}"
