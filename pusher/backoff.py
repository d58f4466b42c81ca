"""Waiting between tries: provider retries with jitter, and Redis calls retried until it answers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pushgate.logs import get_logger

log = get_logger("pusher.backoff")

T = TypeVar("T")

BACKOFF_BASE = 0.25
BACKOFF_CAP = 8.0
REDIS_RETRY_FIRST = 0.02
REDIS_RETRY_CAP = 0.25  # a restarted Redis is used again within this long
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


def backoff_delay(
    attempt: int, retry_after: float | None = None, rand: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with equal jitter: after ``attempt`` retries (0 first) the ceiling
    is min(0.25 s * 2^attempt, 8 s), and the delay is its fixed half plus a uniformly random
    share of the other half, so retries never bunch up near zero. A provider's Retry-After
    is a floor."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2.0**attempt)
    delay = ceiling * (0.5 + rand() / 2)
    return max(delay, retry_after or 0.0)


async def until_redis_answers(
    call: Callable[[], Awaitable[T]], stopping: asyncio.Event, what: str
) -> T:
    """Run ``call`` until it gets past a lost Redis connection, retrying within
    ``REDIS_RETRY_CAP`` seconds; gives up (raises) only once ``stopping`` is set.

    Only for idempotent steps: every delivery script may run twice with the same effect."""
    delay = REDIS_RETRY_FIRST
    failures = 0
    while True:
        try:
            result = await call()
        except REDIS_DOWN as exc:
            task = asyncio.current_task()
            if stopping.is_set() or (task is not None and task.cancelling()):
                raise  # stopping, or a cancellation redis-py reported as a connection error
            failures += 1
            if failures == 1:
                log.warning("redis_unreachable", step=what, error=str(exc) or type(exc).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, REDIS_RETRY_CAP)
            continue
        if failures:
            log.info("redis_reachable_again", step=what, failures=failures)
        return result
