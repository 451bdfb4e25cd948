"""`LatestSlot`: the one-item mailbox of every hand-over between two threads.

Used between the pipeline's stages and between a reconnecting source's reader thread and its
consumer, so no queue anywhere in the runtime can grow.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_EMPTY: Any = object()


class LatestSlot(Generic[T]):
    """A one-item mailbox between two threads.

    Hand-written because ``queue.Queue(maxsize=1)`` cannot replace its item atomically (a
    ``get_nowait`` + ``put_nowait`` pair races with the consumer) and has no "closed" state.

    Non-blocking (drop-oldest) mode: ``put`` replaces an untaken item and counts it in
    ``dropped``. Blocking mode: ``put`` waits until the consumer has taken the previous item.
    After ``close()``, ``put`` refuses new items and ``get`` drains what is left, then gives None.
    """

    def __init__(self, name: str, *, blocking: bool = False) -> None:
        self.name = name
        self.blocking = blocking
        self._cond = threading.Condition()
        self._item: Any = _EMPTY
        self._closed = False
        self.dropped = 0
        self.puts = 0
        self.takes = 0
        self.last_take_time: float | None = None
        self.last_get_wait = 0.0  # seconds the consumer waited in its last successful get()

    def put(self, item: T, timeout: float | None = None) -> bool:
        """Hand over ``item``; False if the slot is closed (or, blocking, on timeout)."""
        with self._cond:
            if self.blocking:
                self._cond.wait_for(lambda: self._item is _EMPTY or self._closed, timeout)
                if self._item is not _EMPTY and not self._closed:
                    return False
            if self._closed:
                return False
            if self._item is not _EMPTY:
                self.dropped += 1
            self._item = item
            self.puts += 1
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> T | None:
        """Take the item, waiting up to ``timeout`` s; None on timeout or when closed and empty."""
        t0 = time.monotonic()
        with self._cond:
            self._cond.wait_for(lambda: self._item is not _EMPTY or self._closed, timeout)
            if self._item is _EMPTY:
                return None
            item, self._item = self._item, _EMPTY
            self.takes += 1
            self.last_take_time = time.monotonic()
            self.last_get_wait = self.last_take_time - t0
            self._cond.notify_all()
            return item

    def wait_empty(self, timeout: float | None = None) -> bool:
        """Wait until the consumer took the item (or the slot closed); True if empty."""
        with self._cond:
            self._cond.wait_for(lambda: self._item is _EMPTY or self._closed, timeout)
            return self._item is _EMPTY

    def close(self, discard: bool = False) -> int:
        """Refuse further puts and wake all waiters; with ``discard``, drop the pending item.

        Returns how many items were discarded (0 or 1).
        """
        with self._cond:
            self._closed = True
            dropped = 0
            if discard and self._item is not _EMPTY:
                self._item = _EMPTY
                dropped = 1
            self._cond.notify_all()
            return dropped

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return 0 if self._item is _EMPTY else 1
