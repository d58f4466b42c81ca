"""Bad input on every route gets a 4xx problem+json, never a 5xx, and changes nothing."""

from __future__ import annotations

import json

import pytest

from gateway.operations import OPERATIONS
from tests.integration.conftest import Enroll
from tests.portal import Portal

BAD_BODIES: list[tuple[str, bytes]] = [
    ("not json", b"{nope"),
    ("bad utf-8", b'{"user_id": "\xff\xfe"}'),
    ("json array", b"[1, 2, 3]"),
    ("json string", b'"hello"'),
    ("null", b"null"),
    ("unknown field", b'{"surprise": 1}'),
    ("wrong types", b'{"user_id": 5, "resource": [], "app_name": {}, "decision": 7, "code": 1}'),
    ("huge string", json.dumps({"user_id": "a" * 5000, "app_name": "b" * 5000}).encode()),
    ("nested deep", b"[" * 5000 + b"]" * 5000),
    ("nul bytes", b'{"user_id": "al\\u0000ice", "resource": "x\\u0000", "app_name": "A"}'),
]

PATH_VALUES = {
    "challenge_id": "ch0001AAAAAAAAAAAAAAAAAAAAAA",
    "user_id": "alice",
    "device_id": "dv0001AAAAAAAAAAAAAAAAAAAAAA",
}
BAD_PATH_VALUES = ["%00", "a" * 300, "..%2F..%2Fetc", "%E2%80%AE", "a%20b", "-x"]


def _path(template: str, value: str | None = None) -> str:
    path = template
    for name, default in PATH_VALUES.items():
        path = path.replace("{" + name + "}", value if value is not None else default)
    return path


def _problem(status: int, content_type: str, body: object) -> None:
    assert 400 <= status < 500, (status, body)
    assert content_type == "application/problem+json", content_type
    assert isinstance(body, dict) and body.get("code") and body.get("request_id")


ROUTES_WITH_BODY = [
    op for op in OPERATIONS if op[4] is not None or (op[1] == "/v1/policy" and op[0] != "get")
]


@pytest.mark.parametrize(("label", "raw"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
async def test_bad_bodies_on_every_route_are_problems(
    admin: Portal, enroll: Enroll, label: str, raw: bytes
) -> None:
    """Every body-taking route answers garbage with 4xx problem+json (never 5xx)."""
    device = await enroll("alice")
    for method, template, *_ in ROUTES_WITH_BODY:
        headers = device.auth_headers() if template.startswith("/v1/device") else None
        reply = await admin.call(
            method.upper(), _path(template), raw=raw, headers=headers, auth=headers is None
        )
        _problem(reply.status, reply.content_type, reply.body)


async def test_oversize_body_is_413_payload_too_large(admin: Portal) -> None:
    """Bodies over 64 KiB get 413 payload_too_large."""
    raw = json.dumps({"user_id": "alice", "pad": "x" * 70_000}).encode()
    reply = await admin.call("POST", "/v1/challenges", raw=raw)
    assert reply.status == 413
    _problem(reply.status, reply.content_type, reply.body)
    assert reply.body["code"] == "payload_too_large"


@pytest.mark.parametrize("value", BAD_PATH_VALUES)
async def test_bad_path_ids_on_every_route_are_problems(
    admin: Portal, enroll: Enroll, value: str
) -> None:
    """Malformed ids in paths answer 4xx problem+json on every route."""
    device = await enroll("alice")
    for method, template, *_ in OPERATIONS:
        if "{" not in template or template.endswith("/ws"):
            continue
        headers = device.auth_headers() if template.startswith("/v1/device") else None
        reply = await admin.call(
            method.upper(), _path(template, value), raw=b"{}", headers=headers, auth=headers is None
        )
        _problem(reply.status, reply.content_type, reply.body)


async def test_unknown_route_and_wrong_method_are_problems(admin: Portal) -> None:
    """404 and 405 from the router are problem+json too."""
    missing = await admin.call("GET", "/v1/nothing-here")
    _problem(missing.status, missing.content_type, missing.body)
    assert missing.status == 404
    wrong = await admin.call("PATCH", "/v1/challenges")
    _problem(wrong.status, wrong.content_type, wrong.body)
    assert wrong.status == 405


async def test_unknown_fields_are_named_in_the_error(admin: Portal) -> None:
    """An unknown field is a 422 invalid_request that names it."""
    reply = await admin.call(
        "POST",
        "/v1/challenges",
        {"user_id": "alice", "resource": "x", "app_name": "X", "colour": "red"},
    )
    assert reply.status == 422
    assert reply.body["code"] == "invalid_request"
    assert "colour" in [e["field"] for e in reply.body["errors"]]


async def test_bad_websocket_handshakes_are_problems(admin: Portal) -> None:
    """Websocket routes refuse bad ids and missing credentials with problem+json."""
    missing = await admin.call("GET", "/v1/challenges/ch0000nope/ws")
    _problem(missing.status, missing.content_type, missing.body)
    anonymous = await admin.call("GET", "/v1/device/ws", auth=False)
    assert anonymous.status == 401
    _problem(anonymous.status, anonymous.content_type, anonymous.body)


async def test_garbage_bodies_leave_no_half_written_records(admin: Portal, enroll: Enroll) -> None:
    """After the garbage, the user still has exactly one device and no challenges."""
    device = await enroll("alice")
    for _, raw in BAD_BODIES:
        await admin.call("POST", "/v1/challenges", raw=raw)
        await admin.call("PUT", "/v1/users/alice", raw=raw)
    assert (await device.list_challenges()) == []
    listed = (await admin.call("GET", "/v1/users/alice/devices")).body["items"]
    assert len(listed) == 1


@pytest.mark.parametrize("raw", [None, b"", b"  \n"], ids=["no body", "empty", "whitespace"])
async def test_put_and_patch_without_a_body_are_422_and_change_nothing(
    admin: Portal, raw: bytes | None
) -> None:
    """An empty PUT or PATCH never resets a policy or a user: 422 naming the body, no write."""
    assert (await admin.call("PATCH", "/v1/policy", {"dedupe_seconds": 5})).status == 200
    created = await admin.call("PUT", "/v1/users/alice", {"role": "admin", "mfa_required": False})
    assert created.status == 201
    for method, path in (
        ("PUT", "/v1/policy"),
        ("PATCH", "/v1/policy"),
        ("PUT", "/v1/users/alice"),
        ("PUT", "/v1/users/bob"),
    ):
        reply = await admin.call(method, path, raw=raw)
        assert reply.status == 422, (method, path, reply.body)
        assert reply.body["code"] == "invalid_request"
        assert reply.body["errors"][0]["field"] == "body"
    assert (await admin.call("GET", "/v1/policy")).body["dedupe_seconds"] == 5
    user = (await admin.call("GET", "/v1/users/alice")).body
    assert (user["role"], user["mfa_required"]) == ("admin", False)
    assert (await admin.call("GET", "/v1/users/bob")).status == 404
