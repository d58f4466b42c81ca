"""Request middleware: request ids, access logs, metrics and the one error path."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web
from pydantic import ValidationError
from redis.exceptions import RedisError

from gateway.bodies import validation_problem
from gateway.clientip import client_ip
from gateway.problems import ProblemError, problem_response
from gateway.services import CHALLENGE_ID, REQUEST_ID, TENANT, services
from gateway.waiters import HubUnavailable
from pushgate.logs import get_logger

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = get_logger("gateway.http")

#: aiohttp's own HTTP errors mapped to our codes
_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "invalid_request",
    413: "payload_too_large",
}


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _request_id(request: web.Request) -> str:
    given = request.headers.get("X-Request-Id", "")
    if 8 <= len(given) <= 64 and given.isascii() and given.replace("-", "").isalnum():
        return given
    return secrets.token_hex(12)


def _from_http_error(exc: web.HTTPException) -> ProblemError:
    code = _HTTP_CODES.get(exc.status, "invalid_request")
    detail = exc.reason if exc.status != 404 else "no such route"
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return ProblemError(code, detail, status=exc.status, headers=headers)


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into problem+json, log one line, count it."""
    svc = services(request)
    request_id = _request_id(request)
    request[REQUEST_ID] = request_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    route = _route_name(request)
    try:
        try:
            response = await handler(request)
        except ProblemError:
            raise
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            raise _from_http_error(exc) from None
        except ValidationError as exc:
            raise validation_problem(exc) from None
        except (RedisError, OSError, HubUnavailable) as exc:
            svc.metrics.backend_errors.inc()
            log.warning(
                "backend_unavailable", error=type(exc).__name__, detail=str(exc)[:200], route=route
            )
            raise ProblemError(
                "backend_unavailable",
                "the datastore is unreachable; try again shortly",
                headers={"Retry-After": "2"},
            ) from None
    except ProblemError as error:
        response = problem_response(error, request_id)
    except Exception:
        log.exception("unhandled_error", route=route)
        response = problem_response(ProblemError("internal", "unexpected error"), request_id)
    response.headers.setdefault("X-Request-Id", request_id)
    elapsed = time.perf_counter() - started
    status = response.status
    svc.metrics.requests.labels(route, request.method, str(status)).inc()
    svc.metrics.latency.labels(route).observe(elapsed)
    log.info(
        "request",
        client_ip=client_ip(
            request.remote, request.headers.get("X-Forwarded-For"), svc.trusted_networks
        ),
        method=request.method,
        route=route,
        status=status,
        ms=round(elapsed * 1000, 2),
        tenant=request.get(TENANT),
        challenge_id=request.get(CHALLENGE_ID),
    )
    return response
