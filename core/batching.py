"""Side records (request timings, cache hit counts) gathered in the process and written out together, at
most once per interval: a request pays no Redis round trip for its statistics, and a process that dies
loses at most one interval's worth."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Batcher(Generic[T]):
    def __init__(self, *, interval: Callable[[], float], flush: Callable[[list[T]], None]) -> None:
        self.interval = interval  # seconds, read at each add (a setting tests may change)
        self.flush = flush
        self.lock = threading.Lock()
        self.items: list[T] = []
        self.flushed_at = time.monotonic()

    def add(self, item: T) -> None:
        """Keep `item`; once the interval has passed, hand everything kept to `flush` (in the caller's
        thread, outside the lock: a slow write never holds other requests)."""
        with self.lock:
            self.items.append(item)
            if time.monotonic() - self.flushed_at < self.interval():
                return
            items, self.items = self.items, []
            self.flushed_at = time.monotonic()
        self.flush(items)
