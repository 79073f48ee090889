"""The conversation lock (patches/lock_heartbeat.py) on a real Redis, as two Rasa
servers share it: a dead server's ticket lapses in seconds, a live one keeps its lock
for as long as its turn runs, and tickets issued at the same moment are never lost.
Each test fails with Rasa's own lock (60 s tickets, never renewed; GET then SET)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from rasa.core.lock_store import LockStore, RedisLockStore

from patches import lock_heartbeat
from tests.support.redis_server import redis_server


@pytest.fixture()
def stores(monkeypatch):
    """Two lock stores on one Redis (two servers), with 1 s tickets renewed every 0.2 s."""
    monkeypatch.setenv(lock_heartbeat.TICKET_ENV, "1")
    monkeypatch.setenv(lock_heartbeat.RENEW_ENV, "0.2")
    lock_heartbeat.install()
    with redis_server() as client:
        port = client.connection_pool.connection_kwargs["port"]
        yield [RedisLockStore(host="127.0.0.1", port=port, db=1) for _ in range(2)]
    lock_heartbeat.uninstall()


def test_a_dead_servers_ticket_lapses_within_its_short_lifetime(stores):
    first, second = stores
    # Server 1 takes the lock and dies mid-turn: its ticket is never renewed nor removed.
    first.issue_ticket("web:dead")  # the default lifetime, as Rasa issues it

    async def main():
        # A deadline, not a speed check: Rasa's own 60 s ticket never lets go within it.
        await asyncio.wait_for(_lock_time(second, "web:dead"), 10)

    asyncio.run(main())  # raises TimeoutError if the dead server's lock never lapsed


async def _lock_time(store: LockStore, conversation: str) -> float:
    started = time.monotonic()
    async with store.lock(conversation, wait_time_in_seconds=0.05):
        return time.monotonic() - started


def test_a_live_turn_keeps_its_lock_longer_than_a_ticket_lives(stores):
    first, second = stores
    order: list[str] = []

    async def slow_turn():
        lifetime = lock_heartbeat.ticket_seconds()
        async with first.lock("web:slow", lock_lifetime=lifetime, wait_time_in_seconds=0.05):
            order.append("first in")
            await asyncio.sleep(3 * lock_heartbeat.ticket_seconds())  # a slow action server
            order.append("first out")

    async def next_message():
        await asyncio.sleep(0.2)
        async with second.lock("web:slow", wait_time_in_seconds=0.05):
            order.append("second in")

    async def main():
        await asyncio.wait_for(asyncio.gather(slow_turn(), next_message()), 20)

    asyncio.run(main())
    assert order == ["first in", "first out", "second in"], order


def test_tickets_issued_at_once_by_two_servers_are_all_kept(stores):
    barrier = threading.Barrier(8)
    numbers: list[int] = []

    def issue(store: RedisLockStore) -> None:
        barrier.wait()
        for _ in range(25):
            numbers.append(store.issue_ticket("web:busy", 30))

    threads = [threading.Thread(target=issue, args=(stores[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    kept = [ticket.number for ticket in stores[0].get_lock("web:busy").tickets]
    assert len(set(numbers)) == len(numbers) == 200, "two servers issued the same ticket"
    assert sorted(kept) == sorted(numbers), f"{200 - len(kept)} tickets lost"
