# ruff: noqa: F811 - the store and postgres fixtures come from test_tracker_store
"""The tracker cache (store/cache.py): flat turn cost, never a stale tracker.

Two stores on one database stand for two Rasa servers behind nginx; every test that
a correctness property rests on was checked to fail with that property's code taken
out (the newest-id check, the private clone, the erasure drop).
"""

from __future__ import annotations

import time
from collections import deque

import pytest
import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity

from store.cache import TrackerCache, clone
from store.tracker_store import ClinicTrackerStore
from tests.test_tracker_store import DOMAIN, conversation, postgres, rows, save, store  # noqa: F401


def turn(text: str, t: float) -> list:
    return [
        UserUttered(text, {"name": "ask_why"}, timestamp=t),
        ActionExecuted("action_answer_followup", timestamp=t + 0.001),
        BotUttered("It often comes from the muscles around the pelvis.", timestamp=t + 0.002),
        ActionExecuted("action_listen", timestamp=t + 0.003),
    ]


def twin(store: ClinicTrackerStore) -> ClinicTrackerStore:
    """A second store on the same database: another Rasa server."""
    other = ClinicTrackerStore.__new__(ClinicTrackerStore)
    other.__dict__.update(store.__dict__)
    other._cache = TrackerCache()
    return other


def stored(store: SQLTrackerStore, sender: str) -> list[dict]:
    table = store.SQLEvent.__table__
    query = sa.select(table.c.type_name, table.c.data).where(table.c.sender_id == sender)
    with store.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(query.order_by(table.c.id)).all()]


async def test_a_second_server_never_serves_a_stale_tracker(store):
    other = twin(store)
    t = time.time()
    await save(store, "alice", conversation("alice", start=t))
    assert (await other.retrieve("alice")).get_slot("stage") == "pregnant"  # other caches it
    await save(store, "alice", turn("why?", t + 1) + [SlotSet("stage", "postpartum")])
    seen = await other.retrieve("alice")
    assert seen.get_slot("stage") == "postpartum"
    assert len(seen.events) == len((await store.retrieve("alice")).events)


async def test_changing_a_retrieved_tracker_changes_nothing_until_it_is_saved(store):
    await save(store, "bea", conversation("bea"))
    first = await store.retrieve("bea")
    first.update(SlotSet("stage", "postpartum"))
    first.update(UserUttered("not saved"))
    again = await store.retrieve("bea")
    assert again.get_slot("stage") == "pregnant"
    assert again.latest_message.text != "not saved"
    assert len(again.events) == len(first.events) - 2


async def test_saves_append_only_the_new_events_and_store_what_rasas_store_stores(store, tmp_path):
    plain = SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "plain.db"))
    t = time.time()
    batches = [conversation("cleo", start=t)] + [turn(f"q{i}", t + 1 + i) for i in range(12)]
    for batch in batches:
        await save(store, "cleo", batch)
        await save(plain, "cleo", batch)
    assert stored(store, "cleo") == stored(plain, "cleo")
    assert rows(store, "cleo") == sum(len(b) for b in batches)
    ours = (await store.retrieve("cleo")).current_state(EventVerbosity.ALL)
    theirs = (await plain.retrieve("cleo")).current_state(EventVerbosity.ALL)
    assert ours == theirs


async def test_a_new_session_is_read_as_rasa_reads_it(store, tmp_path):
    plain = SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "plain.db"))
    t = time.time()
    later = [
        ActionExecuted("action_session_start", timestamp=t + 10),
        SessionStarted(timestamp=t + 10.001),
        ActionExecuted("action_listen", timestamp=t + 10.002),
    ]
    for batch in (conversation("dee", start=t), turn("q", t + 1), later, turn("again", t + 11)):
        await save(store, "dee", batch)
        await save(plain, "dee", batch)
    ours, theirs = await store.retrieve("dee"), await plain.retrieve("dee")
    assert ours.current_state(EventVerbosity.ALL) == theirs.current_state(EventVerbosity.ALL)
    full_ours = await store.retrieve_full_tracker("dee")
    full_theirs = await plain.retrieve_full_tracker("dee")
    assert len(full_ours.events) == len(full_theirs.events) > len(ours.events)


async def test_erasure_by_staff_on_another_server_is_seen_at_once(store):
    other = twin(store)
    await save(store, "eve", conversation("eve"))
    assert await other.retrieve("eve") is not None  # cached there
    store.erase("eve")
    assert await other.retrieve("eve") is None
    assert await store.retrieve("eve") is None


async def test_erasure_empties_the_cache_entry(store):
    await save(store, "fay", conversation("fay"))
    await store.retrieve("fay")
    store.erase("fay")
    assert store._cache.get("fay") is None


async def test_the_cache_can_be_turned_off_and_is_bounded(tmp_path):
    off = ClinicTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "a.db"), cache_trackers=0)
    await save(off, "gus", conversation("gus"))
    assert (await off.retrieve("gus")).get_slot("stage") == "pregnant" and len(off._cache) == 0
    small = ClinicTrackerStore(
        DOMAIN, dialect="sqlite", db=str(tmp_path / "b.db"), cache_trackers=2
    )
    for name in ("h1", "h2", "h3"):
        await save(small, name, conversation(name))
        await small.retrieve(name)
    assert len(small._cache) == 2 and small._cache.get("h1") is None
    with pytest.raises(ValueError):
        TrackerCache(-1)


def test_a_clone_shares_no_container_that_changes_with_events():
    tracker = DialogueStateTracker.from_events("ivy", conversation("ivy"), DOMAIN.slots)
    tracker.update(SlotSet("locations", ["side"]))
    copy = clone(tracker)
    assert copy.current_state(EventVerbosity.ALL) == tracker.current_state(EventVerbosity.ALL)
    assert set(vars(copy)) == set(vars(tracker))
    for name, value in vars(tracker).items():
        if isinstance(value, (dict, list, deque, set)):
            assert getattr(copy, name) is not value, name
    for name, slot in tracker.slots.items():
        assert copy.slots[name] is not slot
    copy.update(SlotSet("stage", "postpartum"))
    assert tracker.get_slot("stage") == "pregnant"


async def test_the_full_tracker_comes_from_memory_and_equals_rasas(store, tmp_path, monkeypatch):
    plain = SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "plain.db"))
    t = time.time()
    for batch in (conversation("kim", start=t), turn("q", t + 1), turn("q2", t + 2)):
        await save(store, "kim", batch)
        await save(plain, "kim", batch)
    theirs = (await plain.retrieve_full_tracker("kim")).current_state(EventVerbosity.ALL)

    async def no_database_read(self, conversation_id):
        raise AssertionError("read the whole conversation from the database again")

    monkeypatch.setattr(SQLTrackerStore, "retrieve_full_tracker", no_database_read)
    await store.retrieve("kim")
    ours = await store.retrieve_full_tracker("kim")
    assert ours.current_state(EventVerbosity.ALL) == theirs
