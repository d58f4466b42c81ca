"""Request input: strict pydantic body models that reject unknown fields and wrong types,
and the ids of a path, validated like body ids."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any, Literal, Self, TypeVar

from aiohttp import web
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from approvals.events import ALL_EVENTS, EVENT_TYPES
from approvals.webhook_targets import check_url
from gateway.problems import ProblemError
from gateway.services import SERVICES

MAX_BODY_BYTES = 64 * 1024

#: user ids and resource ids: letters, digits and ``._@+:=-``, up to 128 characters
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+:=-]{0,127}$"
Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN, max_length=128)]
Token = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
_ID = re.compile(ID_PATTERN)


class Strict(BaseModel):
    """Base for every body: unknown fields are errors, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class NoBody(Strict):
    """Routes that take no parameters accept only an empty body or ``{}``."""


class ChallengeContext(Strict):
    ip: Annotated[str, StringConstraints(max_length=64)] | None = None
    location: Annotated[str, StringConstraints(max_length=200)] | None = None
    user_agent: Annotated[str, StringConstraints(max_length=300)] | None = None


class CreateChallenge(Strict):
    user_id: Identifier
    resource: Identifier
    app_name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    context: ChallengeContext = Field(default_factory=ChallengeContext)
    number_matching: bool | None = None


class PutUser(Strict):
    display_name: Annotated[str, StringConstraints(max_length=200)] | None = None
    email: Annotated[str, StringConstraints(max_length=254)] | None = None
    role: Literal["user", "admin"] = "user"
    mfa_required: bool = True


class EnrollOptions(Strict):
    code: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class PushToken(Strict):
    platform: Literal["apns", "fcm", "none"]
    push_token: Annotated[str, StringConstraints(max_length=4096)] | None = None
    app_bundle_id: Annotated[str, StringConstraints(max_length=200)] | None = None

    @model_validator(mode="after")
    def _token_for_push_platforms(self) -> Self:
        if self.platform != "none" and not self.push_token:
            raise ValueError("push_token is required for apns and fcm")
        return self


class Enroll(PushToken):
    code: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    credential: dict[str, Any]
    device_name: Annotated[str, StringConstraints(max_length=100)] | None = None


class DeviceResponse(Strict):
    decision: Literal["approve", "deny", "fraud"]
    number: Annotated[str, StringConstraints(max_length=8)] | None = None
    assertion: dict[str, Any]


#: a TOTP code as sent; its shape is checked by the TOTP rules (malformed codes count)
CodeText = Annotated[str, StringConstraints(max_length=64)]


class TotpCode(Strict):
    code: CodeText


class TotpConfirm(Strict):
    codes: Annotated[list[CodeText], Field(min_length=2, max_length=2)]


class EnrollmentPeriod(Strict):
    days: int = Field(ge=1, le=90)


class PutWebhook(Strict):
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    events: Annotated[list[str], Field(min_length=1, max_length=len(EVENT_TYPES) + 1)]

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str, info: ValidationInfo) -> str:
        allowed = (info.context or {}).get("webhook_allow", ())
        check_url(value, allowed)  # TargetRefused is a ValueError: 422 naming "url"
        return value

    @field_validator("events")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if t != ALL_EVENTS and t not in EVENT_TYPES]
        if unknown:
            raise ValueError(f"unknown event types {unknown}; use types of SPEC §9 or '*'")
        return list(dict.fromkeys(value))


Body = TypeVar("Body", bound=BaseModel)
_JSON_OBJECT: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    errors = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        errors.append({"field": loc, "message": err["msg"]})
    return errors


def validation_problem(exc: ValidationError) -> ProblemError:
    """A 422 ``invalid_request`` naming every bad field."""
    errors = _field_errors(exc)
    names = ", ".join(e["field"] for e in errors)
    return ProblemError("invalid_request", f"invalid fields: {names}", errors=errors)


#: methods that replace or change a record: an empty body is an error, never "all defaults"
_BODY_REQUIRED = frozenset({"PUT", "PATCH"})


async def _raw_body(request: web.Request) -> bytes:
    """The body, ``{}`` when a POST or DELETE sends none; a PUT or PATCH without one is a 422.
    A body that does not arrive within the request timeout is a 408 and the connection ends."""
    try:
        async with asyncio.timeout(request.app[SERVICES].settings.http_request_timeout_seconds):
            raw = await request.read()
    except TimeoutError:
        raise ProblemError(
            "invalid_request",
            "the request body did not arrive in time",
            status=408,
            headers={"Connection": "close"},
        ) from None
    if raw.strip():
        return raw
    if request.method in _BODY_REQUIRED:
        raise ProblemError(
            "invalid_request",
            f"a {request.method} needs a JSON body; send {{}} to mean all defaults",
            errors=[{"field": "body", "message": "a JSON object is required"}],
        )
    return b"{}"


async def read_body(
    request: web.Request, model: type[Body], context: dict[str, Any] | None = None
) -> Body:
    """Parse and validate the JSON body, or raise a problem (422, or 413 when too large)."""
    raw = await _raw_body(request)
    try:
        return model.model_validate_json(raw, context=context)
    except ValidationError as exc:
        raise validation_problem(exc) from None


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object (any keys), or a 422 problem for anything else."""
    raw = await _raw_body(request)
    try:
        return _JSON_OBJECT.validate_json(raw)
    except ValidationError as exc:
        raise validation_problem(exc) from None


def path_user_id(request: web.Request) -> str:
    """The ``{user_id}`` of the path, validated like body ids."""
    user_id = request.match_info["user_id"]
    if not _ID.fullmatch(user_id):
        raise ProblemError(
            "invalid_request",
            "user_id must be 1-128 letters, digits or ._@+:=- characters",
            errors=[{"field": "user_id", "message": "invalid identifier"}],
        )
    return user_id
