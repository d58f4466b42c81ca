"""Script calls made in the same turn of the event loop go to Redis as one pipeline.

A worker starts up to a read batch of jobs at once and their sends finish in bursts, so many
delivery steps are ready in the same turn of the loop; a gateway under load starts many
creates in one turn, and a thousand waiters' expiries can fall due in the same one. Sending
them as one pipeline (one write, one read) instead of one request each saves most of
redis-py's per-call cost, while every call still is its own script, atomic and answered on
its own. Errors stay per call;
a script the server does not know yet (a flushed or restarted Redis) is loaded and run again.
On a Cluster, where redis-py's pipelines refuse scripts, each call goes on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

Call = tuple[AsyncScript, Sequence[Any], Sequence[Any], "asyncio.Future[Any]"]


class ScriptBatcher:
    """``await batcher(script, keys, args)``: like ``script(keys=keys, args=args)``."""

    def __init__(self, redis: Any, *, enabled: bool = True) -> None:
        self._redis = redis
        self._enabled = enabled
        self._queued: list[Call] = []
        self._runs: set[asyncio.Task[None]] = set()

    async def __call__(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        if not self._enabled:
            return await script(keys=keys, args=args)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Any] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._flush)  # after every call made in this turn of the loop
        self._queued.append((script, keys, args, done))
        return await done

    def _flush(self) -> None:
        batch, self._queued = self._queued, []
        run = asyncio.get_running_loop().create_task(self._run(batch))
        self._runs.add(run)
        run.add_done_callback(self._runs.discard)

    async def _run(self, batch: list[Call]) -> None:
        replies = await self._pipeline(batch)
        if replies is None:
            return
        unknown = [call for call, reply in zip(batch, replies, strict=True) if _forgotten(reply)]
        if unknown:  # load each forgotten script once, then run those calls again, together
            again = await self._reload_and_rerun(unknown)
            if again is not None:
                retried = dict(zip(map(id, unknown), again, strict=True))
                replies = [retried.get(id(c), r) for c, r in zip(batch, replies, strict=True)]
        for (*_, done), reply in zip(batch, replies, strict=True):
            if done.done():
                continue  # its caller was cancelled
            if isinstance(reply, BaseException):
                done.set_exception(reply)
            else:
                done.set_result(reply)

    async def _reload_and_rerun(self, calls: list[Call]) -> list[Any] | None:
        try:
            for script in {id(call[0]): call[0] for call in calls}.values():
                script.sha = await self._redis.script_load(script.script)
        except BaseException as exc:
            _fail(calls, exc)
            if not isinstance(exc, Exception):
                raise
            return None
        return await self._pipeline(calls)

    async def _pipeline(self, batch: list[Call]) -> list[Any] | None:
        """The replies of ``batch`` sent as one pipeline; None when the connection failed (every
        caller then has the error)."""
        pipe = self._redis.pipeline(transaction=False)
        for script, keys, args, _ in batch:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        try:
            return list(await pipe.execute(raise_on_error=False))
        except BaseException as exc:  # the connection failed: every call in it fails alike
            _fail(batch, exc)
            if not isinstance(exc, Exception):
                raise
            return None


def _fail(calls: list[Call], exc: BaseException) -> None:
    """Every caller of ``calls`` gets ``exc`` (cancelled callers with the batch cancelled)."""
    for *_, done in calls:
        if done.done():
            continue
        if isinstance(exc, asyncio.CancelledError):
            done.cancel()
        else:
            done.set_exception(exc)


def _forgotten(reply: Any) -> bool:
    return isinstance(reply, NoScriptError)
