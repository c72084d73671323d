"""A bounded in-memory LRU cache whose entries are computed once even when many requests ask at the same time."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class LRUCache(Generic[V]):
    """At most `max_bytes` of values (sized by `size_of`), least recently used evicted first; `get_or_compute`
    awaits a computation already in flight for the same key instead of starting another."""

    def __init__(self, max_bytes: int, size_of: Callable[[V], int]) -> None:
        self.max_bytes, self.size_of = max_bytes, size_of
        self._items: collections.OrderedDict[Hashable, V] = collections.OrderedDict()
        self._bytes = 0
        self._pending: dict[Hashable, asyncio.Future[V]] = {}
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return self._bytes

    def get(self, key: Hashable) -> V | None:
        """The cached value (now most recently used) or None."""
        if key in self._items:
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key]
        return None

    def put(self, key: Hashable, value: V) -> None:
        """Store `value`, evicting least recently used entries beyond `max_bytes` (a value larger than the whole
        cache is not stored)."""
        size = self.size_of(value)
        if size > self.max_bytes:
            return
        if key in self._items:
            self._bytes -= self.size_of(self._items.pop(key))
        self._items[key] = value
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self._bytes -= self.size_of(old)

    async def get_or_compute(self, key: Hashable, compute: Callable[[], Awaitable[V]]) -> V:
        """The cached value, or the result of `compute()` (stored); concurrent callers share one computation."""
        cached = self.get(key)
        if cached is not None:
            return cached
        if key in self._pending:
            return await asyncio.shield(self._pending[key])
        self.misses += 1
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            value = await compute()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: nobody else may be waiting
            raise
        finally:
            self._pending.pop(key, None)
        self.put(key, value)
        future.set_result(value)
        return value
