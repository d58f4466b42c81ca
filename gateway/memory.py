"""Give memory back to the OS after a surge of websockets.

Thousands of websockets that open and close leave their requests and buffers in reference
cycles (freed only by a full garbage collection) and then as free space inside the
allocators, which keeps the process's RSS at the surge's peak. Once many sockets closed and
closes have paused, a full collection runs and ``malloc_trim(0)`` (in a thread; it takes
milliseconds) returns glibc's free pages to the OS. Elsewhere than glibc only the collection
runs. Python's own small-object allocator keeps most of its arenas; with
``PYTHONMALLOC=malloc`` every allocation goes through glibc and the trim returns most of a
surge (see docs/performance.md).

The garbage collector is tuned for many long-lived websockets (``LongLivedHeap``): every full
collection walks every tracked object, about a hundred per waiting socket, so 15,000 sockets
made each one a pause of a second. Objects that exist after start-up, and those of sockets
opened since, are frozen (``gc.freeze``: out of every collection); once enough sockets have
closed, their objects are unfrozen and collected in the same step as the trim.
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
#: sockets opened since the last freeze that make their objects worth freezing
FREEZE_EVERY_SOCKETS = 500
#: young collections 14x rarer than the default 700 allocations: fewer in-flight request
#: objects get promoted, so the old generation fills (and is walked) far less often
GC_THRESHOLDS = (10_000, 10, 10)


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


def tune_collector() -> None:
    """At start-up: collect once, freeze what survived (modules, settings, the app: they live
    as long as the process) and set the thresholds for a heap of long-lived sockets."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class AllocatorTrim:
    """Counts closed websockets and trims the allocator once enough of them closed; freezes
    the objects of sockets that stay open (see the module's docstring)."""

    def __init__(
        self, threshold: int = CLOSED_SOCKETS_PER_TRIM, quiet_seconds: float = QUIET_SECONDS
    ) -> None:
        self._trim = _malloc_trim()
        self._threshold = threshold
        self._quiet = quiet_seconds
        self._last_close = 0.0
        self.closed_since_trim = 0
        self.trims = 0
        self._frozen_at_sockets = 0  # open sockets at the last freeze (or low-water mark since)

    @property
    def available(self) -> bool:
        """True where the C library has ``malloc_trim`` (glibc)."""
        return self._trim is not None

    def socket_closed(self) -> None:
        """Note one closed websocket."""
        self.closed_since_trim += 1
        self._last_close = time.monotonic()

    async def trim_if_due(self, open_sockets: int = 0) -> bool:
        """Collect and trim when enough sockets closed since the last trim and closes have
        paused, or without a pause once frozen garbage could reach a quarter of what the open
        sockets hold (the share at which Python's own collector walks its old objects); True
        if it did."""
        if self.closed_since_trim < self._threshold:
            return False
        overdue = gc.get_freeze_count() > 0 and self.closed_since_trim >= max(
            4 * self._threshold, open_sockets // 4
        )
        if not overdue and time.monotonic() - self._last_close < self._quiet:
            return False
        self.closed_since_trim = 0
        gc.unfreeze()  # the closed sockets' objects may be among the frozen ones
        collected = gc.collect()
        gc.freeze()  # what survived is the open sockets': long-lived again
        if self._trim is not None:
            await asyncio.to_thread(self._trim, 0)
        self.trims += 1
        log.info("allocator_trimmed", trims=self.trims, collected=collected)
        return True

    def freeze_if_grown(self, open_sockets: int) -> bool:
        """Freeze every tracked object once ``FREEZE_EVERY_SOCKETS`` more sockets are open than
        at the last freeze (they wait for minutes: no collection needs to walk them); True if
        it did. Garbage frozen with them waits for the next trim's collection."""
        self._frozen_at_sockets = min(self._frozen_at_sockets, open_sockets)
        if open_sockets - self._frozen_at_sockets < FREEZE_EVERY_SOCKETS:
            return False
        gc.freeze()
        self._frozen_at_sockets = open_sockets
        return True

    async def run(
        self, interval: float = CHECK_SECONDS, open_sockets: Callable[[], int] = lambda: 0
    ) -> None:
        """Check every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(OSError):
                if not await self.trim_if_due(open_sockets()):
                    self.freeze_if_grown(open_sockets())
