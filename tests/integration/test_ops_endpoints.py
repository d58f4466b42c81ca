"""Operational endpoints: health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

from aiohttp.test_utils import TestServer
from openapi_spec_validator import validate

from gateway.operations import OPERATIONS
from tests.integration.conftest import Enroll
from tests.portal import Portal


async def test_health_and_readiness_answer_ok(portal: Portal) -> None:
    """/healthz is 200 always; /readyz is 200 with Redis and pub/sub up."""
    assert (await portal.call("GET", "/healthz", auth=False)).status == 200
    ready = await portal.call("GET", "/readyz", auth=False)
    assert ready.status == 200
    assert ready.body["checks"] == {"redis": True, "pubsub": True, "draining": False}


async def test_openapi_document_is_valid_and_covers_every_route(
    portal: Portal, server: TestServer
) -> None:
    """/openapi.json validates as OpenAPI 3.1 and lists every route the app serves."""
    document = (await portal.call("GET", "/openapi.json", auth=False)).body
    validate(document)
    assert document["openapi"].startswith("3.1")
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in server.app.router.routes()
        if route.resource is not None
        and route.method not in ("HEAD", "*")
        and not route.resource.canonical.startswith("/demo")
    }
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert served <= documented, served - documented
    assert documented <= served, documented - served
    assert len(OPERATIONS) == len(documented)


async def test_metrics_count_requests_challenges_and_websockets(
    portal: Portal, enroll: Enroll
) -> None:
    """/metrics exposes request counts, latency, challenge outcomes and open websockets."""
    device = await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    await device.respond(created["id"], "deny")
    text = (await portal.call("GET", "/metrics", auth=False)).body
    assert 'pushgate_http_requests_total{method="POST",route="/v1/challenges",status="201"}' in text
    assert "pushgate_http_request_duration_seconds_bucket" in text
    assert 'pushgate_challenges_total{outcome="created"} 1.0' in text
    assert 'pushgate_challenges_total{outcome="denied"} 1.0' in text
    assert "pushgate_open_websockets" in text


async def test_every_response_carries_a_request_id(portal: Portal) -> None:
    """Responses echo a valid X-Request-Id and problems include the same id."""
    reply = await portal.call(
        "GET", "/v1/challenges/nope", headers={"X-Request-Id": "abcdef0123456789"}
    )
    assert reply.headers["X-Request-Id"] == "abcdef0123456789"
    assert reply.body["request_id"] == "abcdef0123456789"
