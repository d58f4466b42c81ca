"""The whole SSH sign-in stack for tests: pushgate, the installed integration, sshd, users.

Real ``pushgate serve`` and ``pushgate worker`` processes, the integration installed from its
bundle by the server's own ``/usr/bin/python3``, Debian's sshd on a loopback port with a PAM
service of its own, two throttle-free test users (one signs in with a password through PAM,
one with a key through the ForceCommand) and a phone answering with the reference device kit.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pyotp

from pusher.standins.tls import make_tls
from pushgate.devicekit.authenticator import SoftAuthenticator
from pushgate.devicekit.client import DeviceClient, DeviceSocket
from pushgate.embedded import EmbeddedRedis, free_port
from tests.integration.processes import (
    base_env,
    cli_json,
    processes,
    start_gateway,
    start_worker,
)
from tests.integration.sshkit import (
    SSH_OPTIONS,
    SshServer,
    Terminal,
    authorize_key,
    client_key,
    local_user,
    require_tools,
    run,
    system_file,
)
from tests.portal import Portal

REPO = Path(__file__).resolve().parents[2]
HOST = "build-01"
PROMPT = r"press Enter \(or type a 6-digit code\): "
NUMBER = r"enter (\d+) in the app"


@dataclass
class Stack:
    """A running stack; ``configure`` rewrites the integration's config file for a test."""

    base_url: str
    origin: str
    portal_key: str
    admin_key: str
    prefix: Path
    config: Path
    pam_entry: Path
    launcher: Path
    sudo_service: str
    pam_user: str
    key_user: str
    key_file: Path
    sshd: SshServer
    syslog: socket.socket
    workdir: Path
    password: str = field(repr=False, default="")
    users: dict[str, str] = field(default_factory=dict)

    def configure(self, users: dict[str, str] | None = None, **values: object) -> None:
        """Write the config file (mode 0600): the stack's gateway and key unless overridden."""
        settings = {
            "url": self.base_url,
            "api_key": self.portal_key,
            "hostname": HOST,
            "max_code_attempts": "2",
            "syslog_socket": self.syslog.getsockname(),
            **{k: str(v) for k, v in values.items()},
        }
        self.users = dict(users or {})
        lines = ["[pushgate]", *(f"{k} = {v}" for k, v in settings.items()), "[users]"]
        lines += [f"{local} = {remote}" for local, remote in self.users.items()]
        self.config.write_text("\n".join(lines) + "\n")
        os.chmod(self.config, 0o600)

    def configured_user(self, local_user: str) -> str:
        """The pushgate user id the config file maps ``local_user`` to."""
        return self.users.get(local_user, local_user)

    def syslog_lines(self) -> list[str]:
        """Syslog datagrams the integration sent since the last call."""
        lines = []
        self.syslog.setblocking(False)
        while True:
            try:
                lines.append(self.syslog.recv(4096).decode())
            except BlockingIOError:
                return lines

    def ssh_password(self, command: str | None = "echo SHELL-RAN-$((6*7))") -> Terminal:
        """``ssh`` as the PAM user with keyboard-interactive (password, then pushgate)."""
        argv = [
            "ssh", *SSH_OPTIONS, "-p", str(self.sshd.port),
            "-o", "PreferredAuthentications=keyboard-interactive",
            "-o", "NumberOfPasswordPrompts=1",
            f"{self.pam_user}@127.0.0.1",
        ]  # fmt: skip
        return Terminal(argv + ([command] if command else []))

    def ssh_key(self, command: str | None, *, tty: bool = True) -> Terminal:
        """``ssh`` as the ForceCommand user with its key (``-tt`` unless ``tty`` is False)."""
        argv = [
            "ssh", *SSH_OPTIONS, "-p", str(self.sshd.port),
            "-o", "PreferredAuthentications=publickey",
            "-o", "IdentitiesOnly=yes", "-i", str(self.key_file),
            "-tt" if tty else "-T",
            f"{self.key_user}@127.0.0.1",
        ]  # fmt: skip
        return Terminal(argv + ([command] if command else []))


async def expect(term: Terminal, pattern: str, timeout: float = 20.0) -> re.Match[str]:
    """:meth:`Terminal.expect` off the event loop, so the phone keeps answering."""
    return await asyncio.to_thread(term.expect, pattern, timeout)


async def finish(term: Terminal) -> int:
    """:meth:`Terminal.finish` off the event loop."""
    return await asyncio.to_thread(term.finish)


def _install(prefix: Path, sudoers: Path) -> None:
    """Build the bundle and install it with the server's Python, as the docs say."""
    bundle = prefix.parent / f"{prefix.name}.pyz"
    done = subprocess.run(
        [sys.executable, "-m", "integrations.ssh", "bundle", "-o", str(bundle)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    run(
        "/usr/bin/python3", str(bundle), "install", "--prefix", str(prefix),
        "--config", str(prefix / "etc" / "ssh.conf"), "--force-command", "--sudoers", str(sudoers),
    )  # fmt: skip
    bundle.unlink()


def _sshd_config(pam_user: str, key_user: str, launcher: Path) -> str:
    return (
        "UsePAM yes\nKbdInteractiveAuthentication yes\nPasswordAuthentication no\n"
        "PubkeyAuthentication yes\nPermitRootLogin no\nLogLevel VERBOSE\nMaxStartups 50\n"
        f"AllowUsers {pam_user} {key_user}\n"
        f"Match User {key_user}\n  AuthenticationMethods publickey\n"
        f"  ForceCommand {launcher} login\n"
    )


@contextmanager
def ssh_stack(redis_server: EmbeddedRedis, workdir: Path) -> Iterator[Stack]:
    """Start everything; tear it all down (users, PAM and sudoers files too) afterwards."""
    require_tools()
    if not redis_server.running:
        redis_server.start()
    tag = secrets.token_hex(3)
    port = free_port()
    origin = f"http://localhost:{port}"
    env = base_env(redis_server.url, public_url=origin, webauthn_origins=origin)
    tenant = cli_json(env, workdir, "tenant", "create", f"ssh-{tag}")
    portal_key = cli_json(env, workdir, "apikey", "create", tenant["tenant_id"], "--role", "portal")
    with ExitStack() as stack, processes() as started:

        async def boot() -> None:
            async with aiohttp.ClientSession() as session:
                await start_gateway(started, session, env, workdir, port)
                await start_worker(started, session, env, workdir, "worker")

        asyncio.run(boot())
        # ForceCommand users run the installed command, so its directory must be traversable;
        # under /run (root's, not writable by users) a stale sudoers rule could never be abused.
        prefix = Path(tempfile.mkdtemp(prefix="pushgate-ssh-test-", dir="/run"))
        stack.callback(shutil.rmtree, prefix, ignore_errors=True)
        os.chmod(prefix, 0o755)  # noqa: S103 (read and run by the ForceCommand user)
        sudoers = Path(f"/etc/sudoers.d/pushgate-test-{tag}")
        stack.callback(sudoers.unlink, missing_ok=True)
        _install(prefix, sudoers)
        pam_entry = prefix / "lib" / "pushgate-ssh" / "pam_pushgate.py"
        launcher = prefix / "sbin" / "pushgate-ssh"
        service = f"pushgate-test-{tag}"
        stack.enter_context(
            system_file(
                Path("/etc/pam.d") / service,
                "auth required pam_unix.so nodelay\n"
                f"auth required pam_python.so {pam_entry} service=SSH\n"
                "account required pam_unix.so\nsession required pam_unix.so\n",
            )
        )
        stack.enter_context(
            system_file(
                Path("/etc/pam.d") / f"{service}-sudo",
                f"auth required pam_python.so {pam_entry} service=sudo\n"
                "account required pam_permit.so\n",
            )
        )
        password = secrets.token_urlsafe(18)  # a leftover account after a crash stays unusable
        pam_user = stack.enter_context(local_user("pgpam", password))
        key_user = stack.enter_context(local_user("pgkey"))
        key_file, public_key = client_key(workdir)
        authorize_key(key_user, public_key)
        syslog = stack.enter_context(socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
        syslog.bind(str(prefix / "syslog.sock"))
        sshd = SshServer(
            workdir / "sshd", service, free_port(), _sshd_config(pam_user, key_user, launcher)
        )
        stack.callback(sshd.close)
        yield Stack(
            base_url=f"http://127.0.0.1:{port}",
            origin=origin,
            portal_key=str(portal_key["api_key"]),
            admin_key=str(tenant["admin_key"]),
            prefix=prefix,
            config=prefix / "etc" / "ssh.conf",
            pam_entry=pam_entry,
            launcher=launcher,
            sudo_service=f"{service}-sudo",
            pam_user=pam_user,
            key_user=key_user,
            key_file=key_file,
            sshd=sshd,
            syslog=syslog,
            workdir=workdir,
            password=password,
        )


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


@asynccontextmanager
async def tls_front(stack: Stack, directory: Path) -> AsyncIterator[tuple[str, Path]]:
    """A TLS endpoint (certificate for ``localhost`` from a throwaway CA) in front of the
    gateway, as a load balancer would be; yields its https URL and the CA file."""
    tls = make_tls(directory)
    gateway_port = int(stack.base_url.rsplit(":", 1)[1])

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", gateway_port)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(
        relay, "127.0.0.1", 0, ssl=tls.server_context(alpn=("http/1.1",))
    )
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"https://localhost:{port}", tls.ca_file
    finally:
        server.close()
        await server.wait_closed()


def new_user_id() -> str:
    """A pushgate user id no other test uses (so no dedupe or fatigue cap carries over)."""
    return f"u-{secrets.token_hex(4)}"


@asynccontextmanager
async def portal_session(stack: Stack) -> AsyncIterator[tuple[Portal, Portal]]:
    """The portal and admin API clients of the stack's tenant."""
    async with aiohttp.ClientSession() as session:
        yield (
            Portal(session, stack.base_url, stack.portal_key),
            Portal(session, stack.base_url, stack.admin_key),
        )


@asynccontextmanager
async def enrolled(stack: Stack, local_user: str) -> AsyncIterator[tuple[Portal, DeviceClient]]:
    """A fresh pushgate user with a phone, mapped to ``local_user`` in the config file."""
    user_id = new_user_id()
    stack.configure(users={local_user: user_id})
    async with portal_session(stack) as (portal, _):
        yield portal, await phone(stack, portal, user_id)


async def phone(stack: Stack, portal: Portal, user_id: str, name: str = "Pixel 8") -> DeviceClient:
    """A software phone enrolled for ``user_id`` through the real enrollment routes."""
    device = DeviceClient(
        stack.base_url,
        session=portal.session,
        authenticator=SoftAuthenticator.generate(origin=stack.origin, rp_id="localhost"),
    )
    await device.enroll(await portal.enrollment_code(user_id), device_name=name)
    return device


async def next_request(socket_: DeviceSocket, timeout: float = 20.0) -> dict[str, Any]:
    """The next sign-in request the phone receives on its in-app channel."""
    async with asyncio.timeout(timeout):
        async for message in socket_:
            if message.get("type") == "challenge":
                return dict(message["challenge"])
            if message.get("type") == "snapshot" and message.get("items"):
                return dict(message["items"][0])
    raise AssertionError("the phone's channel closed before a request came")


async def active_totp(portal: Portal, user_id: str) -> str:
    """Enroll and confirm an authenticator app; returns a code it shows, unused so far."""
    reply = await portal.call("POST", f"/v1/users/{user_id}/totp")
    assert reply.status == 201, reply.body
    totp = pyotp.TOTP(reply.body["secret"])
    into_step = time.time() % 30
    if into_step > 25:  # both confirmation codes must stay in the server's window
        await asyncio.sleep(30.2 - into_step)
    step = int(time.time() // 30)
    codes = [totp.generate_otp(step - 1), totp.generate_otp(step)]
    confirmed = await portal.call("POST", f"/v1/users/{user_id}/totp/confirm", {"codes": codes})
    assert confirmed.status == 200, confirmed.body
    return str(totp.generate_otp(step + 1))
