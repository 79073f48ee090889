"""Small facts every Rasa server of a deployment must agree on, with an expiry.

Telegram's redelivered updates, first presses, which keyboard is live. With Rasa's
Redis lock store (production: several servers) they live in that Redis, under the lock
store's key prefix + ``#channel:``; otherwise (one server: `make run`, tests) in this
process's memory. Values are ids and button payloads, never her words.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Protocol

PREFIX = "#channel:"  # "#" is never in a conversation id, so never a lock key


class SharedState(Protocol):
    """What the channels need: set-once keys and plain values, both expiring."""

    def first(self, key: str, ttl: int) -> bool:
        """Records `key`; True only for the first call with it (fleet-wide)."""

    def get(self, key: str) -> str | None:
        """The value stored under `key`, or None."""

    def put(self, key: str, value: str | None, ttl: int) -> None:
        """Stores `value` under `key` (None deletes it)."""


class MemoryState:
    """One process's memory, bounded (oldest keys go first) and expiring."""

    def __init__(self, size: int = 20000, clock: Any = time.monotonic) -> None:
        self.size = size
        self.clock = clock
        self._items: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def _live(self, key: str) -> str | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] <= self.clock():
            del self._items[key]
            return None
        return item[1]

    def _store(self, key: str, value: str, ttl: int) -> None:
        self._items[key] = (self.clock() + ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def first(self, key: str, ttl: int) -> bool:
        if self._live(key) is not None:
            return False
        self._store(key, "1", ttl)
        return True

    def get(self, key: str) -> str | None:
        return self._live(key)

    def put(self, key: str, value: str | None, ttl: int) -> None:
        if value is None:
            self._items.pop(key, None)
        else:
            self._store(key, value, ttl)


class RedisState:
    """A Redis (the lock store's): SET NX EX makes `first` atomic across servers."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def first(self, key: str, ttl: int) -> bool:
        return bool(self.client.set(self.prefix + key, "1", nx=True, ex=ttl))

    def get(self, key: str) -> str | None:
        value = self.client.get(self.prefix + key)
        return value.decode() if isinstance(value, bytes) else value

    def put(self, key: str, value: str | None, ttl: int) -> None:
        if value is None:
            self.client.delete(self.prefix + key)
        else:
            self.client.set(self.prefix + key, value, ex=ttl)


def for_lock_store(lock_store: Any) -> SharedState:
    """The shared state that goes with Rasa's lock store: its Redis, else memory."""
    from rasa.core.lock_store import RedisLockStore

    if isinstance(lock_store, RedisLockStore):
        return RedisState(lock_store.red, f"{lock_store.key_prefix}{PREFIX}")
    return MemoryState()
