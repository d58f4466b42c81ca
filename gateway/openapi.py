"""The OpenAPI 3.1 document, built from the request models and one table of operations."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel

from gateway import bodies

REF = "#/components/schemas/{model}"

#: (method, path, summary, security, request model, success status, response schema, errors)
Operation = tuple[str, str, str, str, type[BaseModel] | None, int, str | None, tuple[int, ...]]

OPERATIONS: list[Operation] = [
    (
        "post",
        "/v1/challenges",
        "Create a login challenge",
        "apiKey",
        bodies.CreateChallenge,
        201,
        "ChallengeCreated",
        (401, 409, 413, 422, 423, 429, 503),
    ),
    (
        "get",
        "/v1/challenges/{challenge_id}",
        "Read a challenge (long poll with ?wait=)",
        "apiKeyOrWatch",
        None,
        200,
        "Challenge",
        (401, 404, 422, 503),
    ),
    (
        "delete",
        "/v1/challenges/{challenge_id}",
        "Cancel a pending challenge",
        "apiKey",
        None,
        200,
        "Challenge",
        (401, 404, 409, 410, 503),
    ),
    (
        "get",
        "/v1/challenges/{challenge_id}/ws",
        "Websocket: snapshot, push_sent, delivered, seen, result (close 1000)",
        "apiKeyOrWatch",
        None,
        101,
        None,
        (401, 404, 503),
    ),
    (
        "put",
        "/v1/users/{user_id}",
        "Create or update a user",
        "apiKey",
        bodies.PutUser,
        200,
        "User",
        (401, 422, 503),
    ),
    (
        "get",
        "/v1/users/{user_id}",
        "Read a user and their MFA state",
        "apiKey",
        None,
        200,
        "User",
        (401, 404, 503),
    ),
    (
        "post",
        "/v1/users/{user_id}/push-enrollments",
        "Start a push enrollment (code + QR)",
        "apiKey",
        bodies.NoBody,
        201,
        "Enrollment",
        (401, 422, 503),
    ),
    (
        "get",
        "/v1/users/{user_id}/devices",
        "List the user's devices",
        "apiKey",
        None,
        200,
        "ItemList",
        (401, 422, 503),
    ),
    (
        "delete",
        "/v1/users/{user_id}/devices/{device_id}",
        "Remove a device (admin)",
        "apiKey",
        None,
        204,
        None,
        (401, 403, 404, 503),
    ),
    (
        "get",
        "/v1/policy",
        "Read the tenant policy (admin)",
        "apiKey",
        None,
        200,
        "Policy",
        (401, 403, 503),
    ),
    (
        "put",
        "/v1/policy",
        "Replace the tenant policy (admin)",
        "apiKey",
        None,
        200,
        "Policy",
        (401, 403, 422, 503),
    ),
    (
        "patch",
        "/v1/policy",
        "Change some policy fields (admin)",
        "apiKey",
        None,
        200,
        "Policy",
        (401, 403, 422, 503),
    ),
    (
        "post",
        "/v1/device/enroll/options",
        "WebAuthn registration options for a code",
        "none",
        bodies.EnrollOptions,
        200,
        "Object",
        (422, 503),
    ),
    (
        "post",
        "/v1/device/enroll",
        "Register the device with a code",
        "none",
        bodies.Enroll,
        201,
        "DeviceCreated",
        (422, 503),
    ),
    (
        "get",
        "/v1/device/challenges",
        "Pending challenges of the device's user",
        "device",
        None,
        200,
        "ItemList",
        (401, 503),
    ),
    (
        "get",
        "/v1/device/challenges/{challenge_id}",
        "One challenge (records seen)",
        "device",
        None,
        200,
        "DeviceChallenge",
        (401, 404, 503),
    ),
    (
        "post",
        "/v1/device/challenges/{challenge_id}/ack",
        "The push arrived",
        "device",
        bodies.NoBody,
        204,
        None,
        (401, 404, 409, 410, 503),
    ),
    (
        "post",
        "/v1/device/challenges/{challenge_id}/response",
        "Signed approve/deny/fraud",
        "device",
        bodies.DeviceResponse,
        200,
        "Challenge",
        (401, 404, 409, 410, 422, 503),
    ),
    (
        "put",
        "/v1/device/push-token",
        "Replace the device's push token",
        "device",
        bodies.PushToken,
        204,
        None,
        (401, 422, 503),
    ),
    ("delete", "/v1/device", "Remove this device", "device", None, 204, None, (401, 503)),
    (
        "get",
        "/v1/device/ws",
        "Websocket: snapshot, challenge, ended",
        "device",
        None,
        101,
        None,
        (401, 503),
    ),
    (
        "post",
        "/v1/users/{user_id}/totp",
        "Start a TOTP enrollment (secret, otpauth URI, QR)",
        "apiKey",
        bodies.NoBody,
        201,
        "TotpEnrollment",
        (401, 409, 422, 423, 503),
    ),
    (
        "post",
        "/v1/users/{user_id}/totp/confirm",
        "Activate the pending TOTP key with two consecutive codes",
        "apiKey",
        bodies.TotpConfirm,
        200,
        "Object",
        (401, 404, 409, 422, 423, 503),
    ),
    (
        "post",
        "/v1/users/{user_id}/totp/verify",
        "Verify a TOTP code (failures counted, lock at the limit)",
        "apiKey",
        bodies.TotpCode,
        200,
        "TotpResult",
        (401, 404, 422, 423, 503),
    ),
    (
        "post",
        "/v1/users/{user_id}/totp/reset",
        "Replace the TOTP key, given a current valid code",
        "apiKey",
        bodies.TotpCode,
        201,
        "TotpEnrollment",
        (401, 404, 422, 423, 503),
    ),
    (
        "delete",
        "/v1/users/{user_id}/totp",
        "Remove the user's TOTP key (admin)",
        "apiKey",
        None,
        204,
        None,
        (401, 403, 404, 503),
    ),
    (
        "post",
        "/v1/challenges/{challenge_id}/totp",
        "TOTP fallback: a valid code approves the pending challenge",
        "apiKey",
        bodies.TotpCode,
        200,
        "Challenge",
        (401, 404, 409, 410, 422, 423, 503),
    ),
    (
        "post",
        "/v1/users/{user_id}/unlock",
        "Unlock the user and clear their counters (admin)",
        "apiKey",
        bodies.NoBody,
        204,
        None,
        (401, 403, 404, 422, 503),
    ),
    (
        "post",
        "/v1/users/{user_id}/enrollment-period",
        "Extend the enrollment period (admin)",
        "apiKey",
        bodies.EnrollmentPeriod,
        200,
        "User",
        (401, 403, 404, 422, 503),
    ),
    (
        "get",
        "/v1/events",
        "Audit events after an event id, paged (admin)",
        "apiKey",
        None,
        200,
        "EventPage",
        (401, 403, 422, 503),
    ),
    (
        "put",
        "/v1/webhooks",
        "Set the webhook; answers its signing secret once (admin)",
        "apiKey",
        bodies.PutWebhook,
        201,
        "Webhook",
        (401, 403, 422, 503),
    ),
    (
        "get",
        "/v1/webhooks",
        "Read the webhook, without its secret (admin)",
        "apiKey",
        None,
        200,
        "Webhook",
        (401, 403, 404, 503),
    ),
    (
        "delete",
        "/v1/webhooks",
        "Remove the webhook and its queued deliveries (admin)",
        "apiKey",
        None,
        204,
        None,
        (401, 403, 404, 503),
    ),
    ("get", "/healthz", "Liveness", "none", None, 200, "Object", ()),
    (
        "get",
        "/readyz",
        "Readiness (Redis reachable, not draining)",
        "none",
        None,
        200,
        "Object",
        (503,),
    ),
    ("get", "/metrics", "Prometheus metrics", "none", None, 200, None, ()),
    ("get", "/openapi.json", "This document", "none", None, 200, "Object", ()),
]

_OBJECT: dict[str, Any] = {"type": "object", "additionalProperties": True}
_PROBLEM: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code", "request_id"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {"type": "array", "items": _OBJECT},
    },
}
_NAMED_SCHEMAS = (
    "ChallengeCreated",
    "Challenge",
    "User",
    "Enrollment",
    "ItemList",
    "Policy",
    "DeviceCreated",
    "DeviceChallenge",
    "Object",
    "TotpEnrollment",
    "TotpResult",
    "EventPage",
    "Webhook",
)
_SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "apiKey": [{"apiKey": []}],
    "apiKeyOrWatch": [{"apiKey": []}, {"watchToken": []}],
    "device": [{"device": []}],
    "none": [],
}


def _parameters(path: str, method: str) -> list[dict[str, Any]]:
    params = [
        {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
        for part in path.split("/")
        if part.startswith("{")
    ]
    if path == "/v1/challenges/{challenge_id}" and method == "get":
        params.append(
            {
                "name": "wait",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 0, "maximum": 55},
            }
        )
    if path == "/v1/events":
        params += [
            {"name": "after", "in": "query", "required": False, "schema": {"type": "string"}},
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
            },
        ]
    if path.startswith("/v1/challenges/{challenge_id}") and method == "get":
        params.append(
            {"name": "watch_token", "in": "query", "required": False, "schema": {"type": "string"}}
        )
    return params


def _operation(op: Operation) -> dict[str, Any]:
    method, path, summary, security, model, status, schema, errors = op
    responses: dict[str, Any] = {}
    if status == 101:
        responses["101"] = {"description": "Switching protocols to a websocket"}
    elif schema is None:
        responses[str(status)] = {"description": summary}
    else:
        responses[str(status)] = {
            "description": summary,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=schema)}}},
        }
    for code in errors:
        responses[str(code)] = {
            "description": "Problem",
            "content": {
                "application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}
            },
        }
    item: dict[str, Any] = {
        "summary": summary,
        "operationId": f"{method}_{path}".replace("/", "_").replace("{", "").replace("}", ""),
        "security": _SECURITY[security],
        "parameters": _parameters(path, method),
        "responses": responses,
    }
    if model is not None:
        item["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}},
        }
    return item


@cache
def _document_without_server() -> dict[str, Any]:
    schemas: dict[str, Any] = {name: _OBJECT for name in _NAMED_SCHEMAS}
    schemas["Problem"] = _PROBLEM
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        paths.setdefault(op[1], {})[op[0]] = _operation(op)
        model = op[4]
        if model is not None:
            schema = model.model_json_schema(ref_template=REF)
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pushgate",
            "version": "1",
            "description": "Push-notification login approval with TOTP fallback.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer"},
                "device": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "Device <device_id>.<device_secret>",
                },
                "watchToken": {"type": "apiKey", "in": "query", "name": "watch_token"},
            },
        },
    }


def openapi_document(public_url: str) -> dict[str, Any]:
    """The document with this deployment's server URL."""
    return {**_document_without_server(), "servers": [{"url": public_url}]}
