"""``pushgate-ssh``: install, bundle, check, and the ForceCommand's ``login`` and ``verify``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import forcecommand
from .client import Gateway, GatewayUnreachable, Problem
from .config import DEFAULT_CONFIG, ConfigError, load_config
from .install import Layout, bundle, install


def _parser(default_config: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pushgate-ssh", description="SSH (and other PAM) logins approved with pushgate"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    inst = sub.add_parser("install", help="install the PAM module and the pushgate-ssh command")
    inst.add_argument("--prefix", default="/usr/local", help="default: /usr/local")
    inst.add_argument("--config", default=DEFAULT_CONFIG, help=f"default: {DEFAULT_CONFIG}")
    inst.add_argument("--python", default="/usr/bin/python3", help="the server's Python 3")
    inst.add_argument(
        "--force-command",
        action="store_true",
        help="also install the sudoers rule the ForceCommand needs",
    )
    inst.add_argument("--sudoers", default="/etc/sudoers.d/pushgate-ssh")
    out = sub.add_parser("bundle", help="write a one-file zipapp to copy to servers")
    out.add_argument("-o", "--output", default="pushgate-ssh.pyz")
    check = sub.add_parser("check", help="validate the config and reach the gateway")
    check.add_argument("--config", default=default_config)
    check.add_argument("--user", help="also show how this local user would sign in")
    login = sub.add_parser("login", help="the ForceCommand: check, then the shell or command")
    login.add_argument("--config", default=default_config)
    verify = sub.add_parser("verify", help="the check alone (root; run by login through sudo)")
    verify.add_argument("--config", default=default_config)
    verify.add_argument("--user", help="local user to check (root only)")
    return parser


def _check(config_path: str, user: str | None) -> int:
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(f"{config_path}: {exc}", file=sys.stderr)
        return 2
    print(f"config {config_path}: ok (gateway {config.url}, fail_mode {config.fail_mode})")
    gateway = Gateway(
        config.url, config.api_key, ca_file=config.ca_file, timeout=config.http_timeout_seconds
    )
    user_id = config.user_id_for(user) if user else "pushgate-ssh-check"
    try:
        found = gateway.user(user_id)
    except GatewayUnreachable as exc:
        print(f"gateway {config.url}: unreachable ({exc})", file=sys.stderr)
        return 1
    except Problem as problem:
        print(f"gateway {config.url}: {problem}", file=sys.stderr)
        return 1
    print(f"gateway {config.url}: reachable, API key accepted")
    if user:
        print(f"local user {user} -> pushgate user {user_id}: {_factors(found)}")
    return 0


def _factors(user: dict[str, Any] | None) -> str:
    if user is None:
        return "unknown to pushgate (no phone, no authenticator app)"
    mfa = user.get("mfa") or {}
    required = "" if user.get("mfa_required", True) else ", second factor not required"
    return (
        f"{mfa.get('push', 0)} push device(s), TOTP {mfa.get('totp', 'none')}, "
        f"state {mfa.get('state', '?')}{required}"
    )


def main(argv: Sequence[str] | None = None, *, default_config: str = DEFAULT_CONFIG) -> int:
    """Run one command; returns the exit status."""
    args = _parser(default_config).parse_args(argv)
    if args.command == "install":
        layout = Layout(Path(args.prefix), Path(args.config), args.python)
        sudoers = Path(args.sudoers) if args.force_command else None
        for line in install(layout, sudoers=sudoers):
            print(line)
        return 0
    if args.command == "bundle":
        print(bundle(Path(args.output)))
        return 0
    if args.command == "check":
        return _check(args.config, args.user)
    if args.command == "verify":
        return forcecommand.verify(args.config, args.user)
    launcher = os.path.abspath(sys.argv[0])
    return forcecommand.login(args.config, launcher)
