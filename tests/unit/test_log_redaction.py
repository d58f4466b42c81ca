"""Secrets never reach the logs."""

from __future__ import annotations

import io
import json
import logging

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
