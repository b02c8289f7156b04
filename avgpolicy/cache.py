"""Compile cache: a bounded, thread-safe LRU of compiled decision functions.

Keys are ``(partner, purpose, tuple(fields))``; one cache belongs to one (immutable)
Policy, so the policy version is part of every key implicitly. Compiling happens
outside the lock; if two threads compile the same request at once, the first one
stored wins and both return it.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

import cachetools

_NOTHING = object()


class CacheInfo(NamedTuple):
    hits: int
    misses: int
    maxsize: int
    currsize: int


class CompileCache:
    """LRU of compiled functions (cachetools.LRUCache guarded by a lock)."""

    def __init__(self, maxsize: int) -> None:
        if type(maxsize) is not int:
            raise TypeError(f"cache_size must be an int, not {type(maxsize).__name__}")
        if maxsize < 1:
            raise ValueError(f"cache_size must be at least 1, not {maxsize}")
        self._lru: cachetools.LRUCache[Hashable, Any] = cachetools.LRUCache(maxsize=maxsize)
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        #: the last key looked up and its value; ``peek`` reads it without the lock
        self._last: tuple[Any, Any] = (_NOTHING, None)
        self._peek_hits = itertools.count()  # next() on it is atomic: no lock needed

    def get(self, key: Hashable, build: Callable[..., Any], *args: Any) -> Any:
        """The cached value for ``key``, building it with ``build(*args)`` (and storing it) on a miss."""
        with self._lock:
            last = self._last
            if last[0] == key:  # a repeated request: already the most recently used entry
                self._hits += 1
                return last[1]
            try:
                value = self._lru[key]
            except KeyError:
                self._misses += 1
            else:
                self._hits += 1
                self._last = (key, value)
                return value
        value = build(*args)
        with self._lock:
            value = self._lru.setdefault(key, value)
            self._last = (key, value) if key in self._lru else (_NOTHING, None)
            return value

    def peek(self, key: Hashable) -> Any:
        """Lock-free fast path: the value if ``key`` was the last one looked up, else None."""
        last = self._last
        if last[0] == key:
            next(self._peek_hits)
            return last[1]
        return None

    def info(self) -> CacheInfo:
        with self._lock:
            peeked = int(repr(self._peek_hits)[6:-1])  # "count(N)"
            return CacheInfo(self._hits + peeked, self._misses, int(self._lru.maxsize), len(self._lru))

    def clear(self) -> None:
        with self._lock:
            self._lru.clear()
            self._last = (_NOTHING, None)
            self._hits = self._misses = 0
            self._peek_hits = itertools.count()
