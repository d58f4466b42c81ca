"""structlog configuration: JSON lines on stdout (or stderr for CLI commands), secrets redacted."""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import orjson
import structlog

REDACTED = "[redacted]"

#: Libraries that log every HTTP request at INFO (firebase-admin's FCM client sends through
#: httpx): the worker's own line per push says more, so theirs start at WARNING.
QUIET_LIBRARIES = ("httpx", "httpcore")

_SECRET_NAMES = re.compile(
    r"(secret|token|password|authorization|api_key|apikey|code|codes|assertion|credential|"
    r"number|otpauth|private|key_pem|cookie)",
    re.IGNORECASE,
)
_SAFE_NAMES = frozenset({"code_id", "status_code", "error_code", "key_id", "event", "code_name"})
_BEARER = re.compile(r"(Bearer|Device)\s+\S+", re.IGNORECASE)
_LIVE_KEY = re.compile(r"pg_live_[A-Za-z0-9_-]+")


_BEARER_REPLACEMENT = r"\1 " + REDACTED
#: in a library's free text, a run of token characters as long as a device token (APNs: 64
#: hex digits, FCM: ~150 characters around a colon) or a JWT segment; ids, UUIDs, host names
#: and paths are shorter or broken up by dots and slashes
_OPAQUE_RUN = re.compile(r"[A-Za-z0-9_:+=-]{40,}")


@functools.lru_cache(maxsize=4096)
def _secret_name(key: str) -> bool:
    return key not in _SAFE_NAMES and _SECRET_NAMES.search(key) is not None


def _may_hold_credential(text: str) -> bool:
    """False only when neither pattern can match (a cheap test before the regexes)."""
    if not text.isascii():
        return True  # IGNORECASE folds some non-ASCII letters onto ASCII ones
    lowered = text.lower()
    return "pg_live_" in text or "bearer" in lowered or "device" in lowered


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        if not _may_hold_credential(value):
            return value
        return _LIVE_KEY.sub(REDACTED, _BEARER.sub(_BEARER_REPLACEMENT, value))
    if isinstance(value, dict):
        return {k: _redact_item(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    return value


def _redact_item(key: Any, value: Any) -> Any:
    if isinstance(key, str) and _secret_name(key):
        return REDACTED if value not in (None, "") else value
    return _scrub(value)


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: blank every field whose name says it holds a secret."""
    for key in list(event_dict):
        if key == "event":
            event_dict[key] = _scrub(event_dict[key])
        else:
            event_dict[key] = _redact_item(key, event_dict[key])
    return event_dict


def redact_library_text(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor for standard-library lines (aioapns, firebase-admin, ...): their
    message and traceback are free text with no field names to go by, so every run of token
    characters long enough to be a device token or a credential is blanked as well."""
    for key in ("event", "exception"):
        value = event_dict.get(key)
        if isinstance(value, str) and len(value) >= 40:
            event_dict[key] = _OPAQUE_RUN.sub(REDACTED, value)
    return event_dict


def _json_line(event: dict[str, Any], **_: Any) -> str:
    """One log line as compact JSON (orjson); values it cannot encode are logged as repr()."""
    return orjson.dumps(event, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()


def configure_logging(level: str = "info", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Set up structlog once per process; ``stream`` defaults to stdout.

    Standard-library logging (aioapns, firebase-admin, google-auth, aiohttp, redis-py) goes
    through the same processors, so its lines are JSON and redacted like ours."""
    out = stream or sys.stdout
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_json_line)  # orjson: ~6 µs less a line
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,  # before redaction: tracebacks are text too
        redact_secrets,
    ]
    threshold = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared, redact_library_text],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(threshold)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(threshold, logging.WARNING))


def get_logger(name: str) -> Any:
    """A structlog logger bound to a component name."""
    return structlog.get_logger(name, component=name)
