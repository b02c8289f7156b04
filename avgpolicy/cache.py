"""Compile cache: a bounded, thread-safe LRU of compiled decision functions.

Keys are ``(partner, purpose, tuple(fields))``; one cache belongs to one (immutable)
Policy, so the policy version is part of every key implicitly. Compiling happens
outside the lock; if two threads compile the same request at once, the first one
stored wins and both return it.
"""

from __future__ import annotations

import itertools
import operator
import threading
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

import cachetools

_second = operator.itemgetter(1)


class CacheInfo(NamedTuple):
    hits: int
    misses: int
    maxsize: int
    currsize: int


class _LRU(cachetools.LRUCache):  # type: ignore[type-arg]
    """An LRUCache that also drops an evicted key from the cache's lock-free front dict."""

    def __init__(self, maxsize: int, front: dict[Hashable, Any], used: dict[Hashable, int]) -> None:
        super().__init__(maxsize=maxsize)
        self._front = front
        self._used = used

    def popitem(self) -> tuple[Hashable, Any]:
        key, value = super().popitem()
        self._front.pop(key, None)
        self._used.pop(key, None)
        return key, value


class CompileCache:
    """LRU of compiled functions (cachetools.LRUCache guarded by a lock), with a lock-free front.

    ``front`` is a plain dict holding exactly the keys of the LRU (added and removed under the
    lock); a reader may look a key up in it without the lock (a dict read is atomic), count the
    hit with ``next(hit_counter)`` and mark the key in ``used`` with that hit's number. Marks are swept into the LRU
    order (under the lock) before anything is inserted, so eviction stays least recently used.
    """

    def __init__(self, maxsize: int) -> None:
        if type(maxsize) is not int:
            raise TypeError(f"cache_size must be an int, not {type(maxsize).__name__}")
        if maxsize < 1:
            raise ValueError(f"cache_size must be at least 1, not {maxsize}")
        self.front: dict[Hashable, Any] = {}
        self.used: dict[Hashable, int] = {}  # key -> hit number of its last use
        self._lru = _LRU(maxsize, self.front, self.used)
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self.hit_counter = itertools.count()  # next() on it is atomic: no lock needed

    def get(self, key: Hashable, build: Callable[..., Any], *args: Any) -> Any:
        """The cached value for ``key``, building it with ``build(*args)`` (and storing it) on a miss."""
        value = self.front.get(key)
        if value is not None:
            self.used[key] = next(self.hit_counter)
            return value
        with self._lock:
            self._sweep()  # earlier lock-free uses come before this one
            try:
                value = self._lru[key]
            except KeyError:
                self._misses += 1
            else:
                self._hits += 1
                self.front[key] = value
                return value
        value = build(*args)
        with self._lock:
            self._sweep()
            value = self._lru.setdefault(key, value)
            if key in self._lru:
                self.front[key] = value
            return value

    def _sweep(self) -> None:
        """Move the keys used through the front since the last sweep to the LRU's recent end."""
        marks = tuple(self.used.items())  # atomic copy: readers may add marks meanwhile
        self.used.clear()
        lru = self._lru
        for key, _ in sorted(marks, key=_second):  # in the order of their last use
            if key in lru:
                lru[key]  # a lookup moves the key to the recent end

    def info(self) -> CacheInfo:
        with self._lock:
            peeked = int(repr(self.hit_counter)[6:-1])  # "count(N)"
            return CacheInfo(self._hits + peeked, self._misses, int(self._lru.maxsize), len(self._lru))

    def clear(self) -> None:
        with self._lock:
            self._lru.clear()
            self.front.clear()
            self.used.clear()
            self._hits = self._misses = 0
            self.hit_counter = itertools.count()
