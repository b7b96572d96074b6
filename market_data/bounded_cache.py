"""A least-recently-used cache of price series, shared by threads: keyed by what callers ask for (a ticker), so it
must not grow with every new name an attacker sends."""

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import cachetools

V = TypeVar("V")
SERIES_KEPT = 256  # a few MB of prices at most; a sweep names at most 100 tickers


class BoundedCache(Generic[V]):
    def __init__(self, size: int = SERIES_KEPT) -> None:
        self._entries: cachetools.LRUCache[Hashable, V] = cachetools.LRUCache(maxsize=size)
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            return self._entries.get(key)

    def get_or_make(self, key: Hashable, make: Callable[[], V]) -> V:
        found = self.get(key)
        if found is not None:
            return found
        made = make()  # outside the lock: a slow source does not hold up the others
        with self._lock:
            self._entries[key] = made
        return made

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._entries[key] = value

    def __len__(self) -> int:
        return len(self._entries)
