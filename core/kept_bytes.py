"""Big cached answers kept in the process, sent again by Redis only when they changed.

A warm dashboard read fetches the same few hundred KB from Redis on every request (the holdings, the chart):
copying them out of Redis costs both processes more CPU than everything else the read does in Redis. Each
write of such an answer stores a fresh id with it (`write_id`); a reader keeps the bytes it read with that id
(`KEPT`), and its next read asks Redis, in the same round trip as before, for a one-integer "still that write"
instead of the bytes (a short Lua script of the caller's). A kept answer is therefore never served unless Redis
still holds exactly that write: an expiry, a flush or a new write under the same key (another id) sends the
bytes again, and Redis being unreachable serves nothing kept.

The same bounded store keeps other things a process makes from what it reads, by what they were made from (the
portfolios' decoded kept replays: portfolio/kept.py, under their own limit).
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from typing import Any

from django.conf import settings

# Smaller answers are not kept: sending them costs Redis and the reader no more than the script that would
# confirm a kept one (the dashboard's totals, ~500 bytes, cost more CPU per request kept than sent).
KEPT_MIN_BYTES = 8 * 1024
WRITE_ID_LENGTH = 32


def write_id() -> str:
    """A new write's id (WRITE_ID_LENGTH hex characters)."""
    return uuid.uuid4().hex


class KeptBytes:
    """What readers read, per key, with the id of the write it came from; least recently read dropped first
    beyond `limit` bytes (the size each `put` declares; None: the setting named `setting`, in MB, read at each
    `put`).

    A key keeps one value. A caller whose answers are cached under a key naming their data's version (a new one
    after every price refresh) keeps them under a key without it and names the version's key as `of`: the new
    version's answer then replaces the old one's instead of piling up beside it until the limit drops the least
    recently read (each web process's memory climbed toward that limit during a soak of refreshes), and `get`
    finds nothing for another `of`."""

    def __init__(self, limit: int | None = None, *, setting: str = "KEPT_ANSWERS_MB",
                 min_bytes: int | None = None) -> None:
        self._limit = limit
        self._setting = setting
        self._min_bytes = min_bytes
        self.lock = threading.Lock()
        self.items: OrderedDict[Any, tuple[bytes, Any, int, Any]] = OrderedDict()
        self.size = 0

    def get(self, key: Any, *, of: Any = None) -> tuple[bytes, Any] | None:
        """(the write's id, what was kept for `of`) or None."""
        with self.lock:
            found = self.items.get(key)
            if found is None or found[3] != of:
                return None
            self.items.move_to_end(key)
            return found[0], found[1]

    def put(self, key: Any, written: bytes, value: Any, *, size: int, of: Any = None) -> None:
        """Keep `value` (`size` bytes) as the write `written` of `key`, for `of`, in place of whatever `key` kept:
        too small to be worth it (`min_bytes`, KEPT_MIN_BYTES unless told) or bigger than the whole limit, nothing
        is kept."""
        limit = self.limit
        if limit <= 0 or size < (KEPT_MIN_BYTES if self._min_bytes is None else self._min_bytes) or size > limit:
            return  # a limit of 0 keeps nothing, whatever the size declared
        with self.lock:
            previous = self.items.pop(key, None)
            if previous is not None:
                self.size -= previous[2]
            self.items[key] = (written, value, size, of)
            self.size += size
            while self.size > limit:
                _, (_, _, dropped, _) = self.items.popitem(last=False)
                self.size -= dropped

    @property
    def limit(self) -> int:
        return int(getattr(settings, self._setting) * 1024 * 1024) if self._limit is None else self._limit

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
            self.size = 0


KEPT = KeptBytes()
