"""Secrets never reach the logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from typing import Any

import structlog

from pushgate.logs import REDACTED, configure_logging, get_logger


def test_secret_fields_and_bearer_values_are_redacted() -> None:
    """Fields named like secrets and bearer/device credentials inside text are blanked."""
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    try:
        get_logger("test").info(
            "request",
            device_secret="s3cr3t",
            watch_token="tok",
            push_token="apns-token",
            code="123456",
            headers={"Authorization": "Bearer pg_live_abcdef"},
            note="client sent Device dv0001abc.secretvalue and pg_live_zzz",
            status_code=200,
            key_id="key_1",
        )
    finally:
        structlog.reset_defaults()
        configure_logging("warning")
    line = json.loads(stream.getvalue())
    for name in ("device_secret", "watch_token", "push_token", "code"):
        assert line[name] == REDACTED
    assert line["headers"]["Authorization"] == REDACTED
    assert "secretvalue" not in line["note"]
    assert "pg_live_zzz" not in line["note"]
    assert line["status_code"] == 200
    assert line["key_id"] == "key_1"


def test_library_log_lines_come_out_as_redacted_json() -> None:
    """A line a library logs through the standard library (as aioapns and firebase-admin do)
    is rendered as JSON by the same pipeline, with its level, logger name and secrets blanked."""
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    try:
        logging.getLogger("aioapns").warning(
            "request failed: Authorization: Bearer %s for pg_live_abc", "eyJhbGciOi.secret"
        )
        logging.getLogger("aioapns").debug("below the configured level")
    finally:
        structlog.reset_defaults()
        configure_logging("warning")
    (line,) = [json.loads(raw) for raw in stream.getvalue().splitlines()]
    assert line["level"] == "warning"
    assert line["logger"] == "aioapns"
    assert "eyJhbGciOi" not in line["event"]
    assert "pg_live_abc" not in line["event"]
    assert "timestamp" in line


APNS_TOKEN = "9f3c2a71" * 8  # 64 hex digits
FCM_TOKEN = "cQk2x7RZT0e4mH1pYv9a3L:APA91bF8s0dJq2Lw7Xk3Nn5Rr1Tt9Yy4Uu6Ii8Oo0Pp2Aa4Ss6Dd8Ff0Gg"


def _library_lines(log: Callable[[], None]) -> list[dict[str, Any]]:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    try:
        log()
    finally:
        structlog.reset_defaults()
        configure_logging("warning")
    return [json.loads(raw) for raw in stream.getvalue().splitlines()]


def test_device_tokens_and_authorization_headers_in_library_lines_are_redacted() -> None:
    """aioapns and firebase-admin log free text, where only the shape of a value can tell a
    secret: device tokens (APNs hex, FCM registration tokens) and Authorization headers
    come out blanked, in the message and in a logged exception's traceback alike."""

    def log() -> None:
        logging.getLogger("aioapns").warning("notification to %s failed", APNS_TOKEN)
        logging.getLogger("firebase_admin").warning(
            "send to %s failed with headers %s", FCM_TOKEN, {"Authorization": "Bearer ya29.a0Af"}
        )
        try:
            raise RuntimeError(f"token {FCM_TOKEN} rejected (Authorization: Bearer ya29.a0Af)")
        except RuntimeError:
            logging.getLogger("firebase_admin").exception("send failed")

    apns, fcm, failed = _library_lines(log)
    assert (apns["logger"], fcm["logger"], failed["logger"]) == ("aioapns",) + (
        "firebase_admin",
    ) * 2
    for line in (apns, fcm, failed):
        text = json.dumps(line)
        for secret in (APNS_TOKEN, "cQk2x7RZT0e4mH1pYv9a3L", "APA91bF8s0dJq2Lw7", "ya29.a0Af"):
            assert secret not in text
    assert REDACTED in apns["event"] and REDACTED in fcm["event"]
    assert "RuntimeError" in failed["exception"] and REDACTED in failed["exception"]


def test_library_lines_keep_ordinary_text() -> None:
    """Host names, ports, paths and request ids in a library line stay readable."""
    text = "POST https://fcm.googleapis.com/v1/projects/demo-1/messages:send 1b0d2f1e-6a7c-4e1b"

    lines = _library_lines(lambda: logging.getLogger("httpx").warning(text))
    assert lines[0]["event"] == text
