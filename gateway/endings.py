"""The answer to a step that ends a challenge (portal cancel, device answer, TOTP fallback)."""

from __future__ import annotations

from aiohttp import web

from approvals.challenge import portal_view
from approvals.store.challenges import EndOutcome
from gateway.outcomes import END_REFUSALS, end_refused
from gateway.responses import json_response
from gateway.services import Services


def respond_to_end(svc: Services, outcome: EndOutcome, *, counted: str) -> web.Response:
    """Answer an end step: 200 with the view, or the matching problem."""
    record = outcome.record
    if outcome.result in END_REFUSALS:
        raise end_refused(outcome.result, record.status if record is not None else "ended")
    assert record is not None  # the scripts return the record with every other result
    svc.metrics.challenges.labels(counted).inc()
    return json_response(portal_view(record, svc.now_ms()))
