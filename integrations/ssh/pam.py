"""The PAM module, loaded by libpam-python (``pam_python.so``) in the system's Python.

``/etc/pam.d/sshd`` (after the primary ``auth`` line)::

    auth required pam_python.so /usr/local/lib/pushgate-ssh/pam_pushgate.py

The module shows the number and the app name through the PAM conversation, sends
``context.ip`` from ``PAM_RHOST``, waits for the phone after the user presses Enter (or takes
a typed code), and answers ``PAM_SUCCESS`` only for an approved challenge of this user.
Arguments after the module path: ``config=/path/to/ssh.conf`` and ``service=Label``.
"""

from __future__ import annotations

from typing import Any

from . import messages as say
from .authlog import Syslog
from .client import Gateway
from .config import DEFAULT_CONFIG, ConfigError, load_config
from .conversation import Ended, HungUp, Reply, Typed, Waiting
from .dialogue import Dialogue, Login

#: friendly names of common PAM services, shown on the phone as "SSH on build-01"
SERVICE_LABELS = {"sshd": "SSH", "sudo": "sudo", "login": "console", "su": "su"}


class PamConversation:
    """The dialogue through the application's PAM conversation function.

    A PAM conversation is one prompt at a time, so the module cannot watch the phone while a
    prompt is open: the user approves on the phone and presses Enter (or presses Enter first
    and the module waits), or types a code. A request that expires ends this attempt; the SSH
    client asks again (its password prompts count) and a new request is sent.
    """

    can_type = True
    can_resend = False

    def __init__(self, pamh: Any, *, silent: bool = False) -> None:
        self.pamh = pamh
        self.silent = silent

    def _send(self, style: int, text: str) -> str | None:
        try:
            response = self.pamh.conversation(self.pamh.Message(style, text))
        except self.pamh.exception:
            return None
        answer = getattr(response, "resp", None)
        return answer if isinstance(answer, str) else ""

    def say(self, text: str) -> None:
        """A ``PAM_TEXT_INFO`` line (skipped under ``PAM_SILENT``)."""
        if not self.silent:
            self._send(self.pamh.PAM_TEXT_INFO, text)

    def warn(self, text: str) -> None:
        """A ``PAM_ERROR_MSG`` line."""
        self._send(self.pamh.PAM_ERROR_MSG, text)

    def _ask(self, prompt: str) -> str | None:
        return self._send(self.pamh.PAM_PROMPT_ECHO_ON, prompt)

    def wait_or_code(self, waiting: Waiting, seconds: int) -> Reply:
        """Prompt; Enter waits for the phone, anything else is a code."""
        answer = self._ask(say.PUSH_PROMPT)
        if answer is None:
            return HungUp()
        if answer.strip():
            return Typed(answer)
        return Ended(waiting.block())

    def code(self) -> Reply:
        """Prompt for a code."""
        answer = self._ask(say.CODE_PROMPT)
        return HungUp() if answer is None else Typed(answer)

    def resend(self, text: str) -> bool:
        """Never: the client's next attempt sends a new request."""
        return False


def _options(argv: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for arg in argv[1:]:
        name, sep, value = arg.partition("=")
        if sep:
            options[name] = value
    return options


def authenticate(pamh: Any, flags: int, argv: list[str], default_config: str) -> int:
    """``pam_sm_authenticate``: PAM_SUCCESS only for an approved challenge of this user."""
    options = _options(argv)
    conversation = PamConversation(pamh, silent=bool(flags & pamh.PAM_SILENT))
    log = Syslog()
    try:
        user = pamh.get_user(None)
    except pamh.exception:
        return int(pamh.PAM_USER_UNKNOWN)
    if not user:
        return int(pamh.PAM_USER_UNKNOWN)
    path = options.get("config", default_config)
    try:
        config = load_config(path)
    except ConfigError as exc:
        log.error(f"refused {user} via {pamh.service}: bad configuration: {exc}")
        conversation.warn(say.MISCONFIGURED.format(key=exc.key))
        return int(pamh.PAM_AUTH_ERR)
    log = Syslog(config.syslog_socket)
    service = str(pamh.service or "pam")
    label = options.get("service") or SERVICE_LABELS.get(service, service)
    login = Login(local_user=str(user), service=label, remote_ip=pamh.rhost or None)
    gateway = Gateway(
        config.url, config.api_key, ca_file=config.ca_file, timeout=config.http_timeout_seconds
    )
    verdict = Dialogue(config, gateway, conversation, log, login).run()
    if verdict.allowed:
        return int(pamh.PAM_SUCCESS)
    if verdict.outcome == "unreachable":
        return int(pamh.PAM_AUTHINFO_UNAVAIL)
    return int(pamh.PAM_AUTH_ERR)


def make_entry_points(default_config: str = DEFAULT_CONFIG) -> tuple[Any, Any]:
    """The ``pam_sm_authenticate`` and ``pam_sm_setcred`` functions libpam-python calls."""

    def pam_sm_authenticate(pamh: Any, flags: int, argv: list[str]) -> int:
        try:
            return authenticate(pamh, flags, argv, default_config)
        except Exception as exc:  # a bug must refuse the login, never crash the service
            Syslog().error(f"refused: internal error {type(exc).__name__}: {exc}")
            return int(pamh.PAM_AUTH_ERR)

    def pam_sm_setcred(pamh: Any, flags: int, argv: list[str]) -> int:
        return int(pamh.PAM_SUCCESS)

    return pam_sm_authenticate, pam_sm_setcred
