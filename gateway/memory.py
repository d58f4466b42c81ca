"""Give memory back to the OS after a surge of websockets.

Thousands of websockets that open and close leave their requests and buffers in reference
cycles (freed only by a full garbage collection) and then as free space inside the
allocators, which keeps the process's RSS at the surge's peak. Once many sockets closed and
closes have paused, a full collection runs and ``malloc_trim(0)`` (in a thread; it takes
milliseconds) returns glibc's free pages to the OS. Elsewhere than glibc only the collection
runs. Python's own small-object allocator keeps most of its arenas; with
``PYTHONMALLOC=malloc`` every allocation goes through glibc and the trim returns most of a
surge (see docs/performance.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import time
from collections.abc import Callable

from pushgate.logs import get_logger

log = get_logger("gateway.memory")

#: sockets that must have closed since the last trim before another one is worth it
CLOSED_SOCKETS_PER_TRIM = 1000
CHECK_SECONDS = 5.0
#: no socket closed for this long: the surge is over and its memory released
QUIET_SECONDS = 2.0


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


class AllocatorTrim:
    """Counts closed websockets and trims the allocator once enough of them closed."""

    def __init__(
        self, threshold: int = CLOSED_SOCKETS_PER_TRIM, quiet_seconds: float = QUIET_SECONDS
    ) -> None:
        self._trim = _malloc_trim()
        self._threshold = threshold
        self._quiet = quiet_seconds
        self._last_close = 0.0
        self.closed_since_trim = 0
        self.trims = 0

    @property
    def available(self) -> bool:
        """True where the C library has ``malloc_trim`` (glibc)."""
        return self._trim is not None

    def socket_closed(self) -> None:
        """Note one closed websocket."""
        self.closed_since_trim += 1
        self._last_close = time.monotonic()

    async def trim_if_due(self) -> bool:
        """Collect and trim when enough sockets closed since the last trim and closes have
        paused; True if it did."""
        if self.closed_since_trim < self._threshold:
            return False
        if time.monotonic() - self._last_close < self._quiet:
            return False
        self.closed_since_trim = 0
        collected = gc.collect()
        if self._trim is not None:
            await asyncio.to_thread(self._trim, 0)
        self.trims += 1
        log.info("allocator_trimmed", trims=self.trims, collected=collected)
        return True

    async def run(self, interval: float = CHECK_SECONDS) -> None:
        """Check every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(OSError):
                await self.trim_if_due()
