"""Tenant isolation and watch-token scoping."""

from __future__ import annotations

import aiohttp
import pytest

from pushgate.settings import Settings
from tests.integration.conftest import Enroll, make_tenant
from tests.portal import Portal


@pytest.fixture
async def other_portal(portal: Portal, settings: Settings) -> Portal:
    other = await make_tenant(settings, "globex")
    return Portal(portal.session, portal.base_url, other.portal_key)


async def test_foreign_tenant_sees_404_for_challenge(
    portal: Portal, other_portal: Portal, enroll: Enroll
) -> None:
    """Another tenant's key gets 404 (never 403) for a challenge id it does not own."""
    await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    for method in ("GET", "DELETE"):
        reply = await other_portal.call(method, f"/v1/challenges/{created['id']}")
        assert reply.status == 404
        assert reply.body["code"] == "not_found"


async def test_same_user_id_in_two_tenants_is_two_users(
    portal: Portal, other_portal: Portal, enroll: Enroll
) -> None:
    """alice of tenant A has devices; alice of tenant B has none."""
    await enroll("alice")
    assert (await other_portal.create_challenge("alice")).status == 409
    assert (await other_portal.call("GET", "/v1/users/alice")).status == 404
    assert (await other_portal.call("GET", "/v1/users/alice/devices")).body == {"items": []}


async def test_watch_token_reads_only_its_own_challenge(portal: Portal, enroll: Enroll) -> None:
    """A watch token opens its challenge and gets 404 on any other challenge."""
    await enroll("alice")
    first = (await portal.create_challenge("alice")).body
    second = (await portal.create_challenge("alice", resource="workday")).body
    token = first["watch_token"]
    own = await portal.call("GET", f"/v1/challenges/{first['id']}?watch_token={token}", auth=False)
    assert own.status == 200
    foreign = await portal.call(
        "GET", f"/v1/challenges/{second['id']}?watch_token={token}", auth=False
    )
    assert foreign.status == 404
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await portal.session.ws_connect(portal.ws_url(second["id"], token))
    assert caught.value.status == 404


async def test_watch_url_streams_result_to_browser(portal: Portal, enroll: Enroll) -> None:
    """The watch_url from the create answer is a working websocket for that challenge."""
    device = await enroll("alice")
    created = (await portal.create_challenge("alice")).body
    assert created["watch_url"].endswith(
        f"/v1/challenges/{created['id']}/ws?watch_token={created['watch_token']}"
    )
    await device.respond(created["id"], "approve", number=created["number"])
    messages = await portal.wait_result(created["id"], watch_token=created["watch_token"])
    assert [m["type"] for m in messages] == ["snapshot", "result"]
    assert messages[-1]["challenge"]["status"] == "approved"


async def test_requests_without_key_are_401_and_portal_key_cannot_admin(portal: Portal) -> None:
    """No key is 401 with WWW-Authenticate; a portal key on an admin route is 403."""
    reply = await portal.call("POST", "/v1/challenges", {}, auth=False)
    assert reply.status == 401
    assert "WWW-Authenticate" in reply.headers
    assert (await portal.call("GET", "/v1/policy")).status == 403
    bogus = await portal.call(
        "GET", "/v1/policy", headers={"Authorization": "Bearer pg_live_nope"}, auth=False
    )
    assert bogus.status == 401
