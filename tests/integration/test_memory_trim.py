"""After many websockets closed, the gateway hands free heap memory back to the OS."""

from __future__ import annotations

import asyncio
import gc
import weakref

from aiohttp.test_utils import TestServer

from gateway.memory import FREEZE_EVERY_SOCKETS, AllocatorTrim
from gateway.services import SERVICES
from tests.integration.conftest import Enroll
from tests.portal import Portal


async def test_closed_websockets_lead_to_one_allocator_trim(
    server: TestServer, portal: Portal, enroll: Enroll
) -> None:
    """Each closed portal websocket is counted; once the threshold is reached the allocator
    is trimmed once and the count starts again (glibc: malloc_trim)."""
    svc = server.app[SERVICES]
    svc.allocator = AllocatorTrim(threshold=3, quiet_seconds=0)
    assert svc.allocator.available
    device = await enroll("alice")
    for resource in ("a", "b", "c"):
        created = (await portal.create_challenge("alice", resource=resource)).body
        await device.respond(created["id"], "deny")
        messages = await portal.wait_result(created["id"], watch_token=created["watch_token"])
        assert messages[-1]["type"] == "result"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5  # the server counts once its side of the close completed
    while svc.allocator.closed_since_trim < 3 and loop.time() < deadline:
        await asyncio.sleep(0.01)
    assert svc.allocator.closed_since_trim == 3
    assert await svc.allocator.trim_if_due() is True
    assert (svc.allocator.trims, svc.allocator.closed_since_trim) == (1, 0)
    assert await svc.allocator.trim_if_due() is False


class _Cycle:
    """An object in a reference cycle: only the garbage collector frees it."""

    def __init__(self) -> None:
        self.me = self


async def test_objects_of_open_sockets_are_frozen_and_garbage_among_them_freed_by_the_trim() -> (
    None
):
    """Once enough sockets opened, every object is frozen (no collection walks them); a
    socket's cycle that became garbage while frozen is freed by the next trim."""
    gc.unfreeze()
    trim = AllocatorTrim(threshold=3, quiet_seconds=0)
    try:
        cycle = _Cycle()
        gone = weakref.ref(cycle)
        assert trim.freeze_if_grown(FREEZE_EVERY_SOCKETS - 1) is False
        assert gc.get_freeze_count() == 0
        assert trim.freeze_if_grown(FREEZE_EVERY_SOCKETS) is True
        assert gc.get_freeze_count() > 0
        assert trim.freeze_if_grown(FREEZE_EVERY_SOCKETS + 1) is False  # not grown enough
        del cycle
        gc.collect()
        assert gone() is not None  # frozen: out of every collection
        for _ in range(3):
            trim.socket_closed()
        assert await trim.trim_if_due() is True
        assert gone() is None
        assert gc.get_freeze_count() > 0  # what survived is frozen again
    finally:
        gc.unfreeze()


async def test_frozen_garbage_is_collected_without_a_pause_in_closes_once_it_could_grow() -> None:
    """Closes that never pause still lead to a trim while objects are frozen: after four
    times the threshold (or a quarter of the open sockets), so frozen garbage stays bounded."""
    gc.unfreeze()
    trim = AllocatorTrim(threshold=3, quiet_seconds=3600)
    try:
        for _ in range(11):
            trim.socket_closed()
        assert await trim.trim_if_due() is False  # nothing frozen: waits for a pause
        gc.freeze()
        assert await trim.trim_if_due(open_sockets=100) is False  # 11 < 100 // 4
        trim.socket_closed()
        assert await trim.trim_if_due(open_sockets=48) is True  # 12 >= 4 * 3
    finally:
        gc.unfreeze()
