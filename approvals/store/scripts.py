"""Lua scripts: loaded from ``scripts/*.lua`` with the shared library prepended."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.commands.core import AsyncScript

_FOLDER = resources.files("approvals.store") / "scripts"

_NAMES = (
    "create_challenge",
    "answer_challenge",
    "end_challenge",
    "mark_progress",
    "delivery_begin",
    "delivery_gate",
    "delivery_settle",
    "ending_begin",
    "start_enrollment",
    "offer_enrollment",
    "consume_enrollment",
    "remove_device",
    "set_push_token",
    "invalidate_token",
    "put_user",
    "totp_enroll",
    "totp_confirm",
    "totp_attempt",
    "totp_remove",
    "unlock_user",
    "extend_enrollment",
    "enrollment_tick",
    "webhook_put",
    "webhook_ingest",
    "webhook_claim",
)


def with_library(body: str, *, cluster: bool) -> str:
    """``body`` after the shared library (``_lib.lua``, PUB bound): a whole script."""
    lib = (_FOLDER / "_lib.lua").read_text()
    pub = "SPUBLISH" if cluster else "PUBLISH"
    return f"local PUB = '{pub}'\n{lib}\n{body}"


def script_source(name: str, *, cluster: bool) -> str:
    """The full source of one script: the library with PUB bound, then the script body."""
    return with_library((_FOLDER / f"{name}.lua").read_text(), cluster=cluster)


@dataclass(frozen=True)
class Scripts:
    """Registered scripts; each call is one EVALSHA (re-loaded by redis-py if flushed)."""

    create_challenge: AsyncScript
    answer_challenge: AsyncScript
    end_challenge: AsyncScript
    mark_progress: AsyncScript
    delivery_begin: AsyncScript
    delivery_gate: AsyncScript
    delivery_settle: AsyncScript
    ending_begin: AsyncScript
    start_enrollment: AsyncScript
    offer_enrollment: AsyncScript
    consume_enrollment: AsyncScript
    remove_device: AsyncScript
    set_push_token: AsyncScript
    invalidate_token: AsyncScript
    put_user: AsyncScript
    totp_enroll: AsyncScript
    totp_confirm: AsyncScript
    totp_attempt: AsyncScript
    totp_remove: AsyncScript
    unlock_user: AsyncScript
    extend_enrollment: AsyncScript
    enrollment_tick: AsyncScript
    webhook_put: AsyncScript
    webhook_ingest: AsyncScript
    webhook_claim: AsyncScript

    @classmethod
    def register(cls, client: Any, *, cluster: bool) -> Scripts:
        """Register every script with ``client`` (no round trip until first use)."""
        loaded = {n: client.register_script(script_source(n, cluster=cluster)) for n in _NAMES}
        return cls(**loaded)
