"""The ForceCommand fallback (``login_duo``-style) for hosts whose PAM cannot be changed.

sshd runs ``pushgate-ssh login`` as the user instead of their shell or command. The check
itself needs the portal key, which only root may read, so ``login`` runs
``sudo -n pushgate-ssh verify --config FILE`` (one sudoers rule, written by
``pushgate-ssh install --force-command``); ``verify`` identifies the user by ``SUDO_UID``, holds
the dialogue on the terminal and exits 0 only for an approved challenge. Then ``login``
replaces itself by the user's login shell, or runs ``SSH_ORIGINAL_COMMAND`` with it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
from types import FrameType

from . import messages as say
from .authlog import Syslog
from .client import Gateway
from .config import ConfigError, load_config
from .dialogue import Dialogue, Login
from .terminal import conversation_for_stdio

EXIT_ALLOWED = 0
EXIT_REFUSED = 3
SERVICE = "SSH"


def remote_ip() -> str | None:
    """The client's address from ``SSH_CONNECTION`` (or ``SSH_CLIENT``), set by sshd."""
    for name in ("SSH_CONNECTION", "SSH_CLIENT"):
        fields = os.environ.get(name, "").split()
        if fields:
            return fields[0]
    return None


def invoking_user(requested: str | None = None) -> str:
    """Whose login this is: ``SUDO_UID`` under sudo, else our own user.

    ``requested`` (``verify --user``) is honoured for root only; the sudoers rule pins the
    arguments, so a user cannot pass it through sudo.
    """
    if os.geteuid() == 0 and requested:
        return requested
    sudo_uid = os.environ.get("SUDO_UID")
    uid = int(sudo_uid) if os.geteuid() == 0 and sudo_uid and sudo_uid.isdigit() else os.getuid()
    return pwd.getpwuid(uid).pw_name


def _interrupt_once(signum: int, frame: FrameType | None) -> None:
    """The first Ctrl-C interrupts the dialogue; later ones (sudo may relay the terminal's
    too) are ignored, so they cannot cut short the request's cancellation."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def verify(config_path: str, user: str | None = None) -> int:
    """The dialogue for the invoking user on this terminal; 0 only when approved."""
    signal.signal(signal.SIGINT, _interrupt_once)  # Ctrl-C cancels, even under sudo
    conversation = conversation_for_stdio()
    local_user = invoking_user(user)
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        Syslog().error(f"refused {local_user} via ForceCommand: bad configuration: {exc}")
        conversation.warn(say.MISCONFIGURED.format(key=exc.key))
        return EXIT_REFUSED
    gateway = Gateway(
        config.url, config.api_key, ca_file=config.ca_file, timeout=config.http_timeout_seconds
    )
    login = Login(local_user=local_user, service=SERVICE, remote_ip=remote_ip())
    try:
        verdict = Dialogue(config, gateway, conversation, Syslog(config.syslog_socket), login).run()
    except KeyboardInterrupt:
        conversation.warn(say.CANCELLED)
        return EXIT_REFUSED
    return EXIT_ALLOWED if verdict.allowed else EXIT_REFUSED


def _check_through_sudo(launcher: str, config_path: str) -> int:
    sudo = shutil.which("sudo", path="/usr/bin:/bin:/usr/sbin:/sbin") or "sudo"
    # Ctrl-C is the check's to handle: a no-op handler here (not SIG_IGN, which the check
    # would inherit) keeps this process waiting for its answer.
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        argv = [sudo, "-n", launcher, "verify", "--config", config_path]
        return subprocess.call(argv)  # noqa: S603 (fixed program and arguments, no shell)
    except OSError as exc:
        print(f"pushgate: cannot run sudo ({exc}); login refused.", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, previous)


def login(config_path: str, launcher: str) -> int:
    """The ForceCommand: the check (through sudo unless root), then the shell or command."""
    if os.geteuid() == 0:
        status = verify(config_path)
    else:
        status = _check_through_sudo(launcher, config_path)
    if status != EXIT_ALLOWED:
        if status != EXIT_REFUSED:
            print(
                f"pushgate: the second-factor check could not run (exit {status}); login refused."
                " Is its sudoers rule installed?",
                file=sys.stderr,
            )
        return 1
    return exec_shell()


def exec_shell() -> int:
    """Become the user's login shell, or run ``SSH_ORIGINAL_COMMAND`` with it."""
    entry = pwd.getpwuid(os.getuid())
    shell = entry.pw_shell or "/bin/sh"
    name = os.path.basename(shell)
    command = os.environ.get("SSH_ORIGINAL_COMMAND")
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.stdout.flush()
    try:
        if command:
            os.execv(shell, [name, "-c", command])  # noqa: S606 (the user's own shell)
        os.execv(shell, ["-" + name])  # noqa: S606 (the user's own shell)
    except OSError as exc:
        print(f"pushgate: cannot start {shell}: {exc}", file=sys.stderr)
    return 1
