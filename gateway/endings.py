"""The answer to a step that ends a challenge (portal cancel, device answer, TOTP fallback)."""

from __future__ import annotations

from aiohttp import web

from approvals.challenge import portal_view
from gateway.problems import ProblemError
from gateway.services import Services


def respond_to_end(
    svc: Services, result: str, record: dict[str, str], *, counted: str
) -> web.Response:
    """Answer an end step: 200 with the view, or the matching problem."""
    if result == "not_found":
        raise ProblemError("not_found", "no such challenge")
    if result == "expired":
        raise ProblemError("challenge_expired", "the challenge expired")
    if result == "decided":
        raise ProblemError(
            "challenge_already_decided", f"the challenge is already {record.get('status')}"
        )
    svc.metrics.challenges.labels(counted).inc()
    return web.json_response(portal_view(record, svc.now_ms()))
