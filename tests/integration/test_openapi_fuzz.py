"""A bounded schemathesis run against a real ``pushgate serve``: every operation of
``/openapi.json``, called with a valid admin key or device credential, answers only
documented statuses and content types, with bodies that match their response schemas,
and never a 5xx."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.openapi import openapi_document
from pushgate.devicekit.authenticator import SoftAuthenticator
from pushgate.devicekit.client import DeviceClient
from pushgate.embedded import EmbeddedRedis, free_port
from tests.integration.processes import (
    PUSHGATE,
    Process,
    base_env,
    cli_json,
    status_of,
    wait_until,
)

#: examples per operation: about a minute for every operation together on 2 cores
EXAMPLES = 80
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class Stack:
    """A real gateway on its own Redis, an admin key and two enrolled devices."""

    def __init__(self, base_url: str, admin_key: str, device: str, doomed_device: str) -> None:
        self.base_url = base_url
        self.admin_key = admin_key
        self.device = device
        self.doomed_device = doomed_device

    def authorization(self, method: str, path: str, security: list[dict[str, Any]]) -> str | None:
        """The credential the operation asks for (the one removing a device gets its own)."""
        schemes = {name for requirement in security for name in requirement}
        if "device" in schemes:
            device = (
                self.doomed_device if (method, path) == ("DELETE", "/v1/device") else self.device
            )
            return device
        if "apiKey" in schemes:
            return f"Bearer {self.admin_key}"
        return None


async def _enroll(base_url: str, admin_key: str, origin: str, user_id: str) -> str:
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {admin_key}"}
        async with session.post(
            f"{base_url}/v1/users/{user_id}/push-enrollments", headers=headers
        ) as reply:
            code = (await reply.json())["code"]
        device = DeviceClient(
            base_url,
            session=session,
            authenticator=SoftAuthenticator.generate(origin=origin, rp_id="localhost"),
        )
        return (await device.enroll(code)).authorization


async def _started(process: Process, url: str) -> None:
    async with aiohttp.ClientSession() as session:

        async def ready() -> bool:
            return await status_of(session, url) == 200

        await wait_until(ready, "gateway ready", alive=process)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with EmbeddedRedis(appendonly=False) as redis, tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        port = free_port()
        origin = f"http://localhost:{port}"
        env = base_env(redis.url, public_url=origin, log_level="warning")
        admin_key = cli_json(env, cwd, "tenant", "create", "fuzz")["admin_key"]
        gateway = Process("gateway", [*PUSHGATE, "serve", "--port", str(port)], env, cwd)
        try:
            base_url = f"http://127.0.0.1:{port}"
            asyncio.run(_started(gateway, f"{base_url}/readyz"))
            device = asyncio.run(_enroll(base_url, admin_key, origin, "alice"))
            doomed = asyncio.run(_enroll(base_url, admin_key, origin, "bob"))
            yield Stack(base_url, admin_key, device, doomed)
            assert gateway.running, gateway.log_text()
        finally:
            gateway.close()


def _operations() -> dict[str, Any]:
    """Every operation of the document the gateway serves (the same builder)."""
    document = schemathesis.openapi.from_dict(openapi_document("http://localhost"))
    return {op.label: op for op in (result.ok() for result in document.get_all_operations())}


OPERATIONS = _operations()


def _cases(operation: Any) -> st.SearchStrategy[Any]:
    """Valid requests, and invalid ones where the operation takes any input."""
    strategies = [operation.as_strategy(generation_mode=GenerationMode.POSITIVE)]
    if operation.body or operation.query or operation.path_parameters:
        strategies.append(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    return st.one_of(strategies)


def test_the_served_document_is_the_one_fuzzed(stack: Stack) -> None:
    """/openapi.json lists exactly the operations fuzzed here."""
    served = requests.get(f"{stack.base_url}/openapi.json", timeout=10).json()
    labels = {
        f"{method.upper()} {path}" for path, item in served["paths"].items() for method in item
    }
    assert labels == set(OPERATIONS)


@pytest.mark.parametrize("label", sorted(OPERATIONS))
def test_every_operation_answers_as_documented(label: str, stack: Stack) -> None:
    """Generated requests (valid and invalid, with a valid admin key or device credential)
    get documented statuses, content types and schema-conforming bodies, never a 5xx."""
    operation = OPERATIONS[label]
    security = operation.definition.raw.get("security", [])
    authorization = stack.authorization(operation.method.upper(), operation.path, security)

    @given(case=_cases(operation))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def answers_as_documented(case: Any) -> None:
        headers = dict(case.headers or {})
        if authorization is not None:
            headers["Authorization"] = authorization
        case.headers = headers
        with requests.Session() as session:
            case.call_and_validate(
                base_url=stack.base_url, session=session, checks=CHECKS, timeout=30
            )

    answers_as_documented()
