"""Conversation locks that outlive a dead server by seconds, not a minute.

Patches `LockStore.lock` and, for Redis, `RedisLockStore.issue_ticket`,
`finish_serving` and `update_lock` (checked against Rasa 3.6.21).

Rasa serialises the turns of one conversation with a ticket lock. Each ticket is
issued with a fixed lifetime (`TICKET_LOCK_LIFETIME`, 60 s by default) and never
renewed. When a server dies mid-turn its ticket stays until it expires, so her next
message, on the surviving server, waits up to a minute; and a turn that takes longer
than the lifetime (a slow action server) loses its lock while it still runs.

Here a ticket is issued for a short lifetime (`LOCK_TICKET_SECONDS`, 6 s) and renewed
every `LOCK_RENEW_SECONDS` (1.5 s) from the moment it is issued (waiting or held) until
the turn ends. A live server keeps its tickets for as long as it needs them; a dead
server's ticket lapses within 6 s. With Redis, every read-modify-write of a lock
(issue, renew, finish, tidy) is one optimistic transaction (WATCH/MULTI), so two servers
touching the same conversation's lock never overwrite each other's tickets, which
Rasa's plain GET then SET can.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from typing import Any, AsyncGenerator, Callable

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LockError, LockStore, RedisLockStore

logger = logging.getLogger(__name__)

TICKET_ENV, RENEW_ENV = "LOCK_TICKET_SECONDS", "LOCK_RENEW_SECONDS"
DEFAULT_TICKET, DEFAULT_RENEW = 6.0, 1.5
_ORIGINAL: dict[str, Any] = {}


def ticket_seconds() -> float:
    """A ticket's lifetime, renewed while its turn runs (env LOCK_TICKET_SECONDS)."""
    return _seconds(TICKET_ENV, DEFAULT_TICKET)


def renew_seconds() -> float:
    """How often a live ticket is renewed (env LOCK_RENEW_SECONDS), < its lifetime."""
    return min(_seconds(RENEW_ENV, DEFAULT_RENEW), ticket_seconds() / 3)


def _seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return default
    return value if value > 0 else default


def renew(store: LockStore, conversation_id: str, ticket: int, lifetime: float) -> bool:
    """Moves the ticket's expiry to now + `lifetime`; False if it is gone."""

    def change(lock: TicketLock) -> bool:
        for each in lock.tickets:
            if each.number == ticket:
                each.expires = time.time() + lifetime
                return True
        return False

    return bool(_modify(store, conversation_id, change))


@contextlib.asynccontextmanager
async def lock(
    self: LockStore,
    conversation_id: str,
    lock_lifetime: float | None = None,
    wait_time_in_seconds: float = 1,
) -> AsyncGenerator[TicketLock, None]:
    """Rasa's ticket lock, with the ticket renewed until the turn ends."""
    lifetime = lock_lifetime or ticket_seconds()
    ticket = self.issue_ticket(conversation_id, lifetime)
    beat = asyncio.ensure_future(_keep_alive(self, conversation_id, ticket, lifetime))
    try:
        yield await self._acquire_lock(conversation_id, ticket, wait_time_in_seconds)
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        self.cleanup(conversation_id, ticket)


async def _keep_alive(store: LockStore, conversation_id: str, ticket: int, lifetime: float):
    every = renew_seconds()
    while True:
        await asyncio.sleep(every)
        try:
            if not renew(store, conversation_id, ticket, lifetime):
                return  # finished, or lapsed while the event loop was blocked
        except Exception as error:  # Redis down: the turn itself will fail on its own
            logger.warning("Lock renewal failed: %s", type(error).__name__)


def _modify(
    store: LockStore,
    conversation_id: str,
    change: Callable[[TicketLock], Any],
    create: bool = False,
) -> Any:
    """Applies `change` to the stored lock atomically (Redis) and saves it.

    Returns `change`'s result, or None when there is no lock (unless `create`: then a
    new lock is changed and saved).
    """
    if not isinstance(store, RedisLockStore):
        found = store.get_lock(conversation_id)
        if found is None and not create:
            return None
        found = found or TicketLock(conversation_id)
        result = change(found)
        store.save_lock(found)
        return result
    import redis

    key = store.key_prefix + conversation_id
    while True:
        with store.red.pipeline() as pipe:
            try:
                pipe.watch(key)
                raw = pipe.get(key)
                if not raw and not create:
                    pipe.unwatch()
                    return None
                found = (
                    TicketLock.from_dict(json.loads(raw)) if raw else TicketLock(conversation_id)
                )
                result = change(found)
                pipe.multi()
                pipe.set(key, found.dumps())
                pipe.execute()
                return result
            except redis.WatchError:
                continue  # another server changed it meanwhile: read it again


def issue_ticket(self: RedisLockStore, conversation_id: str, lock_lifetime: float = 0) -> int:
    """`RedisLockStore.issue_ticket` as one transaction (no lost tickets)."""
    lifetime = lock_lifetime or ticket_seconds()
    try:
        return _modify(self, conversation_id, lambda lock: lock.issue_ticket(lifetime), True)
    except Exception as error:
        raise LockError(f"Error while acquiring lock: {type(error).__name__}") from None


def finish_serving(self: RedisLockStore, conversation_id: str, ticket_number: int) -> None:
    """`RedisLockStore.finish_serving` as one transaction."""
    _modify(self, conversation_id, lambda found: found.remove_ticket_for(ticket_number))


def update_lock(self: RedisLockStore, conversation_id: str) -> None:
    """`RedisLockStore.update_lock` (drop expired tickets) as one transaction."""
    _modify(self, conversation_id, lambda found: found.remove_expired_tickets())


def install() -> None:
    """Installs the renewed, atomic ticket lock (idempotent)."""
    if not _ORIGINAL:
        _ORIGINAL.update(
            lock=LockStore.lock,
            issue_ticket=RedisLockStore.issue_ticket,
            finish_serving=RedisLockStore.finish_serving,
            update_lock=RedisLockStore.update_lock,
        )
    LockStore.lock = lock  # type: ignore[method-assign]
    RedisLockStore.issue_ticket = issue_ticket  # type: ignore[method-assign]
    RedisLockStore.finish_serving = finish_serving  # type: ignore[method-assign]
    RedisLockStore.update_lock = update_lock  # type: ignore[method-assign]


def uninstall() -> None:
    """Puts Rasa's own lock back (tests)."""
    if _ORIGINAL:
        LockStore.lock = _ORIGINAL["lock"]  # type: ignore[method-assign]
        RedisLockStore.issue_ticket = _ORIGINAL["issue_ticket"]  # type: ignore[method-assign]
        RedisLockStore.finish_serving = _ORIGINAL["finish_serving"]  # type: ignore[method-assign]
        RedisLockStore.update_lock = _ORIGINAL["update_lock"]  # type: ignore[method-assign]
