"""Put exactly what the server needs in place, and build the one-file bundle that carries it.

``pushgate-ssh bundle -o pushgate-ssh.pyz`` (on any machine with pushgate) writes a zipapp of
this package; on the server ``sudo python3 pushgate-ssh.pyz install`` copies the package to
``PREFIX/lib/pushgate-ssh/pushgate_ssh/``, writes the PAM entry file next to it, the
``PREFIX/sbin/pushgate-ssh`` command, a config template (mode 0600) when none exists, and with
``--force-command`` the sudoers rule the ForceCommand needs. Nothing but the system's Python
is used; PAM and sshd files are left for the operator to edit (the lines are printed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipapp
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

PACKAGE = "pushgate_ssh"
PAM_PYTHON = ("/lib/security/pam_python.so", "/lib/x86_64-linux-gnu/security/pam_python.so")
MIN_PYTHON = (3, 11)

CONFIG_TEMPLATE = """\
# pushgate SSH sign-in (PAM module and ForceCommand). Keep this file root:root, mode 0600:
# it holds a portal API key, and the login is refused if others can read it.
[pushgate]
# The gateway, and a portal key from: pushgate apikey create TENANT_ID --role portal
url = https://pushgate.example.com
api_key =
# CA certificate that signed the gateway's TLS certificate (default: the system's CAs)
# ca_file = /etc/pushgate/ca.pem
# closed: refuse logins when the gateway cannot be reached; open: let them in (logged loudly)
fail_mode = closed
# http_timeout_seconds = 10
# answer_timeout_seconds = 90
# max_code_attempts = 3
# max_requests = 3
# exempt_groups = breakglass
# hostname = build-01
# app_name = {service} on {host}
# resource = {service}:{host}
# default_user_id = {user}
# syslog_socket = /dev/log

[users]
# local user = pushgate user id (users not listed use default_user_id, i.e. the same name)
# root = alice
"""


@dataclass(frozen=True)
class Layout:
    """Where the installed pieces go."""

    prefix: Path
    config: Path
    python: str

    @property
    def lib(self) -> Path:
        return self.prefix / "lib" / "pushgate-ssh"

    @property
    def pam_entry(self) -> Path:
        return self.lib / "pam_pushgate.py"

    @property
    def launcher(self) -> Path:
        return self.prefix / "sbin" / "pushgate-ssh"


def sources() -> dict[str, bytes]:
    """This package's modules by file name (from a directory or from the zipapp)."""
    package = resources.files(__package__ or PACKAGE)
    return {
        item.name: item.read_bytes()
        for item in package.iterdir()
        if item.name.endswith(".py") and item.is_file()
    }


def bundle(output: Path) -> Path:
    """Write the zipapp: this package as ``pushgate_ssh`` plus a ``__main__``."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / PACKAGE).mkdir()
        for name, data in sources().items():
            (root / PACKAGE / name).write_bytes(data)
        (root / "__main__.py").write_text(
            f"import sys\nfrom {PACKAGE}.cli import main\nsys.exit(main())\n"
        )
        zipapp.create_archive(root, output, interpreter="/usr/bin/env python3")
    return output


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _install_package(lib: Path) -> None:
    lib.mkdir(parents=True, exist_ok=True)
    os.chmod(lib, 0o755)  # noqa: S103 (code every login reads; root-owned, not writable)
    fresh = lib / f".{PACKAGE}.new"
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(mode=0o755)
    for name, data in sources().items():
        _write(fresh / name, data, 0o644)
    target, old = lib / PACKAGE, lib / f".{PACKAGE}.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    fresh.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def pam_entry_text(layout: Layout) -> str:
    """The file ``pam_python.so`` loads."""
    return (
        '"""pushgate second factor for PAM (libpam-python entry; see pushgate_ssh.pam)."""\n'
        "import sys\n\n"
        f"_LIB = {str(layout.lib)!r}\n"
        "if _LIB not in sys.path:\n"
        "    sys.path.insert(0, _LIB)\n\n"
        f"from {PACKAGE}.pam import make_entry_points  # noqa: E402\n\n"
        f"pam_sm_authenticate, pam_sm_setcred = make_entry_points({str(layout.config)!r})\n"
    )


def launcher_text(layout: Layout) -> str:
    """The ``pushgate-ssh`` command (isolated mode: no user site, no PYTHON* variables)."""
    return (
        f"#!{layout.python} -I\n"
        '"""pushgate-ssh: SSH sign-in with pushgate (login, verify, check, install)."""\n'
        "import sys\n\n"
        f"sys.path.insert(0, {str(layout.lib)!r})\n"
        f"from {PACKAGE}.cli import main  # noqa: E402\n\n"
        f"sys.exit(main(default_config={str(layout.config)!r}))\n"
    )


def sudoers_text(layout: Layout) -> str:
    """The one rule the ForceCommand needs: anyone may run the check, as root, exactly so."""
    command = f"{layout.launcher} verify --config {layout.config}"
    return (
        "# pushgate ForceCommand: every user may run the second-factor check as root (it reads\n"
        "# the portal key); the arguments are fixed, so nothing else can be run this way.\n"
        f'Defaults!{layout.launcher} env_keep += "SSH_CONNECTION SSH_CLIENT"\n'
        f"ALL ALL=(root) NOPASSWD: {command}\n"
    )


def _install_sudoers(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    _write(tmp, text.encode(), 0o440)
    visudo = shutil.which("visudo", path="/usr/sbin:/sbin:/usr/bin")
    if visudo is not None:
        checked = subprocess.run(  # noqa: S603 (visudo from the system path, our file)
            [visudo, "-cqf", str(tmp)], capture_output=True, text=True, check=False
        )
        if checked.returncode != 0:
            tmp.unlink()
            raise SystemExit(f"visudo rejected the sudoers rule: {checked.stderr.strip()}")
    os.replace(tmp, path)


def install(layout: Layout, *, sudoers: Path | None) -> list[str]:
    """Install; returns what was done and what the operator does next, line by line."""
    if sys.version_info < MIN_PYTHON:
        raise SystemExit("pushgate-ssh needs Python 3.11 or newer on the server")
    _install_package(layout.lib)
    _write(layout.pam_entry, pam_entry_text(layout).encode(), 0o644)
    _write(layout.launcher, launcher_text(layout).encode(), 0o755)
    done = [f"installed {layout.lib}/{PACKAGE}/", f"installed {layout.pam_entry}"]
    done.append(f"installed {layout.launcher}")
    if not layout.config.exists():
        layout.config.parent.mkdir(parents=True, exist_ok=True)
        _write(layout.config, CONFIG_TEMPLATE.encode(), 0o600)
        done.append(f"wrote {layout.config} (mode 0600): set url and api_key")
    else:
        done.append(f"kept {layout.config}")
    if sudoers is not None:
        _install_sudoers(sudoers, sudoers_text(layout))
        done.append(f"installed {sudoers} (the ForceCommand's check runs as root)")
    if not any(Path(p).exists() for p in PAM_PYTHON):
        done.append("PAM needs libpam-python: apt-get install libpam-python")
    done += [
        f"check it:        {layout.launcher} check",
        "PAM (/etc/pam.d/sshd, after the primary auth line):",
        f"  auth required pam_python.so {layout.pam_entry}",
        f"ForceCommand (sshd_config): ForceCommand {layout.launcher} login",
    ]
    return done
