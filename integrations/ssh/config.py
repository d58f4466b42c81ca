"""The one configuration file (``/etc/pushgate/ssh.conf``): read, checked, or refused by key.

Standard library only: this runs inside the system's Python (libpam-python) on the server.
A file that others may read or write, an unknown key or a bad value raises
:class:`ConfigError` naming the key, and the login is refused.
"""

from __future__ import annotations

import configparser
import ipaddress
import os
import re
import socket
import stat
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_CONFIG = "/etc/pushgate/ssh.conf"
SECTION = "pushgate"
USERS_SECTION = "users"
FAIL_MODES = ("closed", "open")
PLACEHOLDERS = ("user", "host", "service")

#: pushgate's identifier rule for user and resource ids (letters, digits, ``._@+:=-``)
IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+:=-]{0,127}")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_TOKEN = re.compile(r"[\x21-\x7e]+")


class ConfigError(Exception):
    """The configuration cannot be used; ``key`` names what to fix."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message


@dataclass(frozen=True)
class SshConfig:
    """Everything the PAM module and the ForceCommand need to ask pushgate."""

    url: str
    api_key: str = field(repr=False)
    ca_file: str | None = None
    fail_mode: str = "closed"
    http_timeout_seconds: int = 10
    answer_timeout_seconds: int = 90
    max_code_attempts: int = 3
    max_requests: int = 3
    exempt_groups: tuple[str, ...] = ()
    hostname: str = ""
    app_name: str = "{service} on {host}"
    resource: str = "{service}:{host}"
    default_user_id: str = "{user}"
    syslog_socket: str = "/dev/log"
    users: dict[str, str] = field(default_factory=dict)
    path: str = DEFAULT_CONFIG

    @property
    def fail_open(self) -> bool:
        """True only when the file says ``fail_mode = open``."""
        return self.fail_mode == "open"

    @property
    def host(self) -> str:
        """The name the phone shows for this server."""
        return self.hostname or socket.gethostname().split(".")[0] or "localhost"

    def user_id_for(self, local_user: str) -> str:
        """The pushgate user id of a local account: ``[users]`` first, else the default."""
        if local_user in self.users:
            return self.users[local_user]
        user_id = self.default_user_id.format(user=local_user, host=self.host, service="")
        if not IDENTIFIER.fullmatch(user_id):
            raise ConfigError(
                "default_user_id",
                f"gives {user_id!r} for local user {local_user!r}, which is not a valid pushgate "
                f"user id; map the user in [{USERS_SECTION}]",
            )
        return user_id

    def app_name_for(self, service: str, local_user: str) -> str:
        """What the phone shows as the app (at most 100 characters)."""
        return self.app_name.format(user=local_user, host=self.host, service=service)[:100]

    def resource_for(self, service: str, local_user: str) -> str:
        """The resource id this server's logins are recorded under (room left for a suffix)."""
        raw = self.resource.format(user=local_user, host=self.host, service=service)
        return re.sub(r"[^A-Za-z0-9._@+:=-]", "-", raw).lstrip("._@+:=-")[:110] or "ssh"


_INT_BOUNDS = {
    "http_timeout_seconds": (1, 60),
    "answer_timeout_seconds": (10, 600),
    "max_code_attempts": (1, 10),
    "max_requests": (1, 5),
}
_TEXT_KEYS = ("hostname", "app_name", "resource", "default_user_id", "syslog_socket")
_KNOWN = frozenset(
    {"url", "api_key", "ca_file", "fail_mode", "exempt_groups", *_INT_BOUNDS, *_TEXT_KEYS}
)


def check_file_mode(path: str) -> None:
    """Refuse a file that is not a regular file owned by root (or us) with mode 0600 or less."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise ConfigError("file", f"{path}: cannot read it ({exc.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError("file", f"{path} is not a regular file")
    if info.st_uid not in (0, os.geteuid()):
        raise ConfigError("file", f"{path} is owned by uid {info.st_uid}; it must belong to root")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise ConfigError(
            "file",
            f"{path} has mode {mode:04o}, so others may read the API key; run: chmod 600 {path}",
        )


def load_config(path: str = DEFAULT_CONFIG) -> SshConfig:
    """Read and check the configuration file (its mode first, then every key)."""
    check_file_mode(path)
    parser = configparser.ConfigParser(interpolation=None, default_section="\0none")
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # user names keep case
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle)
    except (configparser.DuplicateOptionError, configparser.DuplicateSectionError) as exc:
        raise ConfigError(_duplicate_key(exc), f"given twice in {path}") from None
    except configparser.Error as exc:
        raise ConfigError("file", f"{path} is not an INI file: {exc.message}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("file", f"{path}: cannot read it ({exc})") from None
    return parse_sections(parser, path)


def parse_sections(parser: configparser.ConfigParser, path: str = DEFAULT_CONFIG) -> SshConfig:
    """Turn parsed sections into an :class:`SshConfig`, checking every key."""
    unknown_sections = [s for s in parser.sections() if s not in (SECTION, USERS_SECTION)]
    if unknown_sections:
        raise ConfigError(unknown_sections[0], f"unknown section [{unknown_sections[0]}]")
    if not parser.has_section(SECTION):
        raise ConfigError(SECTION, f"the [{SECTION}] section is missing")
    values = dict(parser.items(SECTION))
    for key in values:
        if key not in _KNOWN:
            raise ConfigError(key, f"unknown key in [{SECTION}]")
    kwargs: dict[str, object] = {"path": path}
    kwargs["url"] = _url(values.get("url", ""))
    kwargs["api_key"] = _api_key(values.get("api_key", ""))
    ca_file = values.get("ca_file", "").strip()
    if ca_file:
        if not os.path.isfile(ca_file) or not os.access(ca_file, os.R_OK):
            raise ConfigError("ca_file", f"{ca_file} is not a readable file")
        kwargs["ca_file"] = ca_file
    fail_mode = values.get("fail_mode", "closed").strip().lower()
    if fail_mode not in FAIL_MODES:
        raise ConfigError("fail_mode", f"must be 'closed' or 'open', not {fail_mode!r}")
    kwargs["fail_mode"] = fail_mode
    for key, (low, high) in _INT_BOUNDS.items():
        if key in values:
            kwargs[key] = _bounded_int(key, values[key], low, high)
    groups = [g.strip() for g in values.get("exempt_groups", "").split(",") if g.strip()]
    kwargs["exempt_groups"] = tuple(groups)
    for key in _TEXT_KEYS:
        if key in values:
            kwargs[key] = _text(key, values[key])
    kwargs["users"] = _users(parser)
    return SshConfig(**kwargs)  # type: ignore[arg-type]


def _duplicate_key(exc: configparser.Error) -> str:
    option = getattr(exc, "option", None)
    return str(option or getattr(exc, "section", "file"))


def _url(value: str) -> str:
    value = value.strip().rstrip("/")
    if not value:
        raise ConfigError(
            "url", "is missing (the gateway's address, e.g. https://pushgate.example)"
        )
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError("url", f"must be an https:// URL, not {value!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError("url", "must not carry credentials, a query or a fragment")
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise ConfigError("url", f"has a bad port: {value!r}") from None
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(
            "url", "plain http would send the API key in clear; use https (http only to loopback)"
        )
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _api_key(value: str) -> str:
    value = value.strip()
    if not value:
        raise ConfigError(
            "api_key", "is missing (a portal key: pushgate apikey create --role portal)"
        )
    if not _TOKEN.fullmatch(value):
        raise ConfigError("api_key", "must be one word of printable characters")
    return value


def _bounded_int(key: str, raw: str, low: int, high: int) -> int:
    try:
        number = int(raw.strip())
    except ValueError:
        raise ConfigError(key, f"must be a whole number, not {raw.strip()!r}") from None
    if not low <= number <= high:
        raise ConfigError(key, f"must be between {low} and {high}, not {number}")
    return number


def _text(key: str, raw: str) -> str:
    value = raw.strip()
    if key in ("app_name", "resource", "default_user_id"):
        if not value:
            raise ConfigError(key, "must not be empty")
        for name in _PLACEHOLDER.findall(value):
            if name not in PLACEHOLDERS:
                raise ConfigError(key, f"unknown placeholder {{{name}}} (use {{user}}, {{host}})")
        if value.count("{") != value.count("}"):
            raise ConfigError(key, "has an unbalanced brace")
    if key == "hostname" and value and not IDENTIFIER.fullmatch(value):
        raise ConfigError(key, "must be letters, digits or ._@+:=- characters")
    if key == "syslog_socket" and value and not value.startswith("/"):
        raise ConfigError(key, "must be an absolute path")
    return value


def _users(parser: configparser.ConfigParser) -> dict[str, str]:
    if not parser.has_section(USERS_SECTION):
        return {}
    users: dict[str, str] = {}
    for local, user_id in parser.items(USERS_SECTION):
        user_id = user_id.strip()
        if not IDENTIFIER.fullmatch(user_id):
            raise ConfigError(
                f"users.{local}",
                f"{user_id!r} is not a pushgate user id (1-128 letters, digits or ._@+:=-)",
            )
        users[local] = user_id
    return users
