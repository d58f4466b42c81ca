"""The OpenAPI 3.1 document, built from the request models and one table of operations."""

from __future__ import annotations

from functools import cache
from typing import Any

from gateway.operations import OPERATIONS, Operation

REF = "#/components/schemas/{model}"

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


#: operations with a second success status: created or replaced, created or deduplicated
_ALSO_SUCCEEDS = {
    ("put", "/v1/users/{user_id}"): 201,
    ("put", "/v1/webhooks"): 200,
    ("post", "/v1/challenges"): 200,
}


def _documented_errors(op: Operation) -> set[int]:
    """The operation's own problems plus those every route of its shape can answer: 422 for
    a bad path id or body, 413 for an oversize body, 400 for a websocket route called
    without a websocket handshake."""
    method, path, _, _, model, status, _, errors = op
    found = set(errors)
    if "{" in path or model is not None or method in ("post", "put", "patch"):
        found.add(422)
    if model is not None or method in ("post", "put", "patch"):
        found.add(413)
    if status == 101:
        found.add(400)
    return found


def _operation(op: Operation) -> dict[str, Any]:
    method, path, summary, security, model, status, schema, _ = op
    responses: dict[str, Any] = {}
    if status == 101:
        responses["101"] = {"description": "Switching protocols to a websocket"}
    elif schema is None:
        responses[str(status)] = {"description": summary}
    else:
        also = _ALSO_SUCCEEDS.get((method, path))
        for code in (status,) if also is None else sorted((status, also)):
            responses[str(code)] = {
                "description": summary,
                "content": {"application/json": {"schema": {"$ref": REF.format(model=schema)}}},
            }
    for code in sorted(_documented_errors(op)):
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
