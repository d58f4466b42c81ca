"""Real OpenSSH for tests: Debian's packages, a throwaway sshd, test users and a pty driver.

Everything here needs root (sshd, PAM service files, users, sudoers); :func:`require_tools`
installs missing Debian packages with apt (under ``/tmp/apt.lock``) or skips with the reason.
"""

from __future__ import annotations

import os
import re
import secrets
import select
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PACKAGES = ("openssh-server", "openssh-client", "libpam-python", "pamtester", "sudo")
TOOLS = {
    "/usr/sbin/sshd": "openssh-server",
    "/usr/bin/ssh": "openssh-client",
    "/usr/bin/ssh-keygen": "openssh-client",
    "/usr/bin/pamtester": "pamtester",
    "/usr/bin/sudo": "sudo",
    "/usr/bin/python3": "python3",
}
PAM_PYTHON = ("/lib/security/pam_python.so", "/lib/x86_64-linux-gnu/security/pam_python.so")
SSH_OPTIONS = (
    "-F", "/dev/null",
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
)  # fmt: skip


def _missing() -> list[str]:
    missing = [path for path in TOOLS if not os.access(path, os.X_OK)]
    if not any(os.path.exists(path) for path in PAM_PYTHON):
        missing.append("pam_python.so")
    return missing


def _apt_install() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["flock", "/tmp/apt.lock", "apt-get", "install", "-y", "-qq", *PACKAGES]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        update = ["flock", "/tmp/apt.lock", "apt-get", "update", "-qq"]
        subprocess.run(update, env=env, capture_output=True, check=False)
        subprocess.run(install, env=env, capture_output=True, check=False)


def require_tools() -> None:
    """Skip unless root with OpenSSH, libpam-python, pamtester and sudo (installed if need be)."""
    if os.geteuid() != 0:
        pytest.skip("SSH login tests need root (sshd, PAM service files, test users)")
    if _missing() and shutil.which("apt-get"):
        _apt_install()
    missing = _missing()
    system_python = subprocess.run(
        ["/usr/bin/python3", "-c", "import sys; print(sys.version_info >= (3, 11))"],
        capture_output=True,
        text=True,
        check=False,
    )
    if system_python.stdout.strip() != "True":
        missing.append("python3 >= 3.11 (the system Python libpam-python embeds)")
    if missing:
        pytest.skip(
            f"SSH login tests need {', '.join(missing)} "
            f"(apt-get install {' '.join(PACKAGES)} failed or apt is unavailable)"
        )


def run(*argv: str, input_text: str | None = None) -> str:
    """Run a command that must succeed; its stdout."""
    done = subprocess.run(
        argv, input=input_text, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"{' '.join(argv)} failed: {done.stderr}"
    return done.stdout


@contextmanager
def local_user(prefix: str, password: str | None = None) -> Iterator[str]:
    """A throwaway local account with a home directory, removed afterwards."""
    name = f"{prefix}{secrets.token_hex(3)}"
    run("useradd", "--create-home", "--shell", "/bin/bash", name)
    try:
        if password is not None:
            run("chpasswd", input_text=f"{name}:{password}\n")
        yield name
    finally:
        subprocess.run(["userdel", "--force", "--remove", name], capture_output=True, check=False)


@contextmanager
def local_group(prefix: str, *members: str) -> Iterator[str]:
    """A throwaway group with ``members``, removed afterwards."""
    name = f"{prefix}{secrets.token_hex(3)}"
    run("groupadd", name)
    try:
        for member in members:
            run("usermod", "--append", "--groups", name, member)
        yield name
    finally:
        subprocess.run(["groupdel", name], capture_output=True, check=False)


@contextmanager
def system_file(path: Path, text: str, mode: int = 0o644) -> Iterator[Path]:
    """A file under /etc (a PAM service, a sudoers rule) that exists only inside the block."""
    assert not path.exists(), f"{path} already exists"
    path.write_text(text)
    os.chmod(path, mode)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def authorize_key(user: str, public_key: str) -> None:
    """Put ``public_key`` in the user's ``~/.ssh/authorized_keys`` with sshd's modes."""
    home = Path(os.path.expanduser(f"~{user}"))
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    keys.write_text(public_key)
    os.chmod(keys, 0o600)
    for path in (ssh_dir, keys):
        shutil.chown(path, user, user)


def client_key(directory: Path) -> tuple[Path, str]:
    """A fresh ed25519 client key: its file and its public line."""
    key = directory / "client_ed25519"
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
    return key, key.with_suffix(".pub").read_text()


class SshServer:
    """``sshd -D -e`` on a loopback port with a throwaway host key.

    sshd names its PAM service after the program it runs as, so it runs through a symlink
    called ``service``: its PAM stack is ``/etc/pam.d/<service>``, never the system's sshd.
    """

    def __init__(self, directory: Path, service: str, port: int, config: str) -> None:
        self.directory = directory
        self.port = port
        directory.mkdir(parents=True, exist_ok=True)
        self.program = directory / service
        self.program.symlink_to("/usr/sbin/sshd")
        host_key = directory / "host_ed25519_key"
        run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key))
        self.config = directory / "sshd_config"
        self.config.write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile none\n" + config
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        run(str(self.program), "-t", "-f", str(self.config))
        self.log_path = directory / "sshd.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [str(self.program), "-D", "-e", "-f", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
        )
        self._wait_for_banner()

    def _wait_for_banner(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"sshd exited:\n{self.log_text()}"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(64).startswith(b"SSH-2.0-"):
                        return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"sshd did not answer on port {self.port}:\n{self.log_text()}")

    def log_text(self) -> str:
        """What sshd logged so far."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def close(self) -> None:
        """Stop sshd (our own child, by its pid) and close its log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()


class Terminal:
    """A program on its own pseudo-terminal (its controlling tty), read like a person would."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        master, slave = os.openpty()
        self.process = subprocess.Popen(
            ["setsid", "--ctty", *argv],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            close_fds=True,
        )
        os.close(slave)
        self.fd = master
        self.output = ""
        self._seen = 0

    def _read(self, timeout: float) -> bool:
        """Read what is there; False at end of output."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 4096)
        except OSError:  # EIO: every writer closed the terminal
            data = b""
        self.output += data.decode("utf-8", "replace")
        return bool(data)

    def expect(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        """Wait until the output (after the last match) matches ``pattern``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            found = regex.search(self.output, self._seen)
            if found:
                self._seen = found.end()
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {pattern!r} within {timeout} s in:\n{self.output}")
            if not self._read(left):
                raise AssertionError(f"output ended without {pattern!r}:\n{self.output}")

    def send(self, text: str) -> None:
        """Type ``text``."""
        os.write(self.fd, text.encode())

    def finish(self, timeout: float = 20.0) -> int:
        """Read to the end and return the exit status."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(deadline - time.monotonic()):
            if self.process.poll() is not None and not select.select([self.fd], [], [], 0)[0]:
                break
        return self.process.wait(timeout=max(0.1, deadline - time.monotonic()))

    def __enter__(self) -> Terminal:
        """Use as ``with Terminal(argv) as term``; closed on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close."""
        self.close()

    def close(self) -> None:
        """Kill the program if it still runs and close the terminal."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        os.close(self.fd)
