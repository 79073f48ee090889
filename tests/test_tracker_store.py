"""ClinicTrackerStore on SQLite and PostgreSQL: erasure, purge, loud failures, no memory.

PostgreSQL tests start Debian's postgresql (`apt-get install postgresql`) on a free
port with a data directory under /tmp, and tear it down; they are skipped, with the
reason, only when initdb is not installed.
"""

from __future__ import annotations

import asyncio
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from rasa.core.tracker_store import (
    FailSafeTrackerStore,
    InMemoryTrackerStore,
    SQLTrackerStore,
    TrackerStore,
)
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    BotUttered,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

import patches
from channels.health import tracker_store_status
from scripts import tracker_admin
from store.tracker_store import (
    ERASE_ACTION,
    ERASE_SLOT,
    ClinicTrackerStore,
    TrackerStoreConfigError,
    TrackerStoreUnavailable,
)
from tests.needs import missing
from tests.support.ports import free_port
from tests.support.postgres import Postgres, postgres_missing

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = Domain.load(str(ROOT / "domain.yml"))


@pytest.fixture(autouse=True, scope="module")
def rasa_patches():
    """As in a Rasa server with our config.yml: the no-memory-fallback patch is on."""
    patches.install()


SECRET = "I am 31 weeks pregnant and bleeding"  # must never reach a log or error message


@pytest.fixture(scope="module")
def postgres():
    reason = postgres_missing()
    if reason:
        missing(reason)
    server = Postgres().start()
    try:
        yield server
    finally:
        server.remove()


# --- helpers -------------------------------------------------------------------------


def sqlite_store(tmp_path: Path, **kwargs) -> ClinicTrackerStore:
    return ClinicTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "t.db"), **kwargs)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        made = sqlite_store(tmp_path)
    else:
        pg = request.getfixturevalue("postgres")
        made = ClinicTrackerStore(DOMAIN, **pg.store_kwargs())
        table = made.SQLEvent.__table__
        with made.engine.begin() as connection:
            connection.execute(table.delete())
    yield made
    made.engine.dispose()


def conversation(sender: str, text: str = SECRET, start: float | None = None) -> list:
    """A short conversation: session start, her message, a reply."""
    t = time.time() if start is None else start
    return [
        ActionExecuted("action_session_start", timestamp=t),
        SessionStarted(timestamp=t + 0.001),
        SlotSet("clinic_loaded", True, timestamp=t + 0.002),
        ActionExecuted("action_listen", timestamp=t + 0.003),
        UserUttered(text, {"name": "describe_pain"}, timestamp=t + 0.004),
        SlotSet("stage", "pregnant", timestamp=t + 0.005),
        BotUttered("Thanks. First, a quick safety check.", timestamp=t + 0.006),
        ActionExecuted("action_listen", timestamp=t + 0.007),
    ]


async def save(store: TrackerStore, sender: str, events: list) -> DialogueStateTracker:
    tracker = await store.retrieve(sender)  # the current session, as Rasa does
    if tracker is None:
        tracker = DialogueStateTracker.from_events(sender, [], DOMAIN.slots)
    for event in events:
        tracker.update(event)
    await store.save(tracker)
    return tracker


def rows(store: SQLTrackerStore, sender: str | None = None) -> int:
    table = store.SQLEvent.__table__
    query = sa.select(sa.func.count()).select_from(table)
    if sender is not None:
        query = query.where(table.c.sender_id == sender)
    with store.engine.connect() as connection:
        return connection.execute(query).scalar()


def erase_turn(t: float) -> list:
    return [
        UserUttered("yes", {"name": "affirm"}, timestamp=t),
        ActionExecuted(ERASE_ACTION, timestamp=t + 0.001),
        BotUttered("Done: I've deleted this conversation", timestamp=t + 0.002),
        SlotSet(ERASE_SLOT, True, timestamp=t + 0.003),
        ActionExecuted("action_listen", timestamp=t + 0.004),
    ]


# --- saving, erasure, purge ----------------------------------------------------------


async def test_saves_and_retrieves_a_conversation(store):
    await save(store, "alice", conversation("alice"))
    tracker = await store.retrieve("alice")
    assert tracker.get_slot("stage") == "pregnant"
    assert tracker.latest_message.text == SECRET
    store.check()


async def test_confirmed_erasure_deletes_every_event_of_that_conversation_only(store):
    old = time.time() - 7200
    await save(store, "alice", conversation("alice", start=old))
    await save(store, "alice", conversation("alice"))  # a second session
    await save(store, "bob", conversation("bob"))
    assert rows(store, "alice") == 16
    await save(store, "alice", erase_turn(time.time() + 1))
    assert rows(store, "alice") == 0, "nothing of hers may be left or re-inserted"
    assert rows(store, "bob") == 8
    assert await store.retrieve("alice") is None
    # Her next message starts a fresh conversation.
    await save(store, "alice", conversation("alice", text="hello again"))
    tracker = await store.retrieve_full_tracker("alice")
    assert [e.text for e in tracker.events if isinstance(e, UserUttered)] == ["hello again"]


async def test_erase_action_without_confirmation_erases_nothing(store):
    await save(store, "alice", conversation("alice"))
    t = time.time() + 1
    # The action failed (action server down): it ran, but set no confirmation.
    await save(store, "alice", [UserUttered("yes", timestamp=t), ActionExecuted(ERASE_ACTION)])
    assert rows(store, "alice") == 10
    # The confirmation slot from an earlier turn does not count either.
    await save(store, "alice", [SlotSet(ERASE_SLOT, True), UserUttered("hi", timestamp=t + 1)])
    assert rows(store, "alice") == 12


async def test_staff_forget_and_purge_with_the_admin_script(store, tmp_path, capsys):
    now = time.time()
    day = 86400
    await save(store, "old", conversation("old", start=now - 40 * day))
    await save(store, "regular", conversation("regular", start=now - 40 * day))
    await save(store, "regular", conversation("regular", start=now - 1 * day))
    await save(store, "new", conversation("new", start=now - 3600))
    await save(store, "forgotten", conversation("forgotten"))
    endpoints = tmp_path / "endpoints.yml"
    url = store.engine.url
    section = (
        f"tracker_store:\n  type: store.tracker_store.ClinicTrackerStore\n"
        f"  dialect: {url.drivername}\n  db: '{url.database}'\n"
    )
    if url.host:
        section += f"  url: {url.host}\n  port: {url.port}\n  username: {url.username}\n"
    endpoints.write_text(section)

    assert tracker_admin.main(["--endpoints", str(endpoints), "forget", "forgotten"]) == 0
    assert "8 events deleted" in capsys.readouterr().out
    assert rows(store, "forgotten") == 0

    assert tracker_admin.main(["--endpoints", str(endpoints), "purge", "30", "--dry-run"]) == 0
    assert "Would delete 16 events" in capsys.readouterr().out
    assert rows(store) == 32

    assert tracker_admin.main(["--endpoints", str(endpoints), "purge", "30"]) == 0
    assert "Deleted 16 events older than 30 days, 1 whole conversations" in capsys.readouterr().out
    assert rows(store, "old") == 0
    regular = await store.retrieve_full_tracker("regular")
    assert [e.timestamp for e in regular.events if isinstance(e, SessionStarted)] == [
        pytest.approx(now - day + 0.001, abs=1)
    ], "the old session went, the current one stayed whole"
    assert rows(store, "regular") == 8
    assert rows(store, "new") == 8

    assert tracker_admin.main(["--endpoints", str(endpoints), "purge", "0"]) == 0
    assert rows(store) == 0


def test_admin_script_refuses_bad_arguments(tmp_path, capsys):
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  type: redis\n")
    assert tracker_admin.main(["--endpoints", str(endpoints), "forget", " "]) == 2
    assert tracker_admin.main(["--endpoints", str(endpoints), "purge", "-1"]) == 2
    with pytest.raises(SystemExit, match="not an SQL store"):
        tracker_admin.main(["--endpoints", str(endpoints), "forget", "x"])


# --- loud failures -------------------------------------------------------------------


def test_the_sqlite_folder_and_file_are_created_for_her_only(tmp_path):
    """A fresh clone has no var/: the store makes it, 0700, and the database 0600."""
    folder = tmp_path / "var" / "deeper"
    store = ClinicTrackerStore(DOMAIN, dialect="sqlite", db=str(folder / "t.db"))
    assert store.check() is None
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "t.db").stat().st_mode) == 0o600


def test_an_existing_world_readable_database_is_made_private(tmp_path):
    path = tmp_path / "t.db"
    path.touch(mode=0o644)
    path.chmod(0o644)
    ClinicTrackerStore(DOMAIN, dialect="sqlite", db=str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_database_that_cannot_be_created_is_one_line_naming_the_setting(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(TrackerStoreConfigError, match=r"^tracker_store .*check db$"):
        ClinicTrackerStore(
            DOMAIN, dialect="sqlite", db=str(tmp_path / "a-file" / "t.db"), exit_on_error=False
        )


def test_start_fails_after_startup_wait_when_postgresql_is_unreachable():
    if postgres_missing():
        missing(postgres_missing())
    with pytest.raises(TrackerStoreConfigError, match="unreachable after 1 s") as error:
        ClinicTrackerStore(
            DOMAIN, dialect="postgresql", host="127.0.0.1", port=free_port(), db="rasa",
            username="postgres", startup_wait=1, exit_on_error=False,
        )  # fmt: skip
    assert "\n" not in str(error.value) and "port" in str(error.value)


def test_a_server_stops_with_one_line_and_no_traceback(tmp_path):
    """As Rasa builds it (exit_on_error left on): one line on stderr, exit status 1."""
    (tmp_path / "a-file").write_text("")
    code = (
        "from rasa.core.tracker_store import TrackerStore\n"
        "from rasa.utils.endpoints import EndpointConfig\n"
        "TrackerStore.create(EndpointConfig(type='store.tracker_store.ClinicTrackerStore',"
        f" dialect='sqlite', db={str(tmp_path / 'a-file' / 't.db')!r}))\n"
        "print('still running')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done
    assert "still running" not in done.stdout
    lines = [line for line in done.stderr.splitlines() if line.startswith("tracker_store")]
    assert len(lines) == 1 and "check db" in lines[0], done.stderr
    assert "Traceback" not in done.stderr


def test_a_typo_in_the_module_path_becomes_memory_and_the_health_check_says_so():
    config = EndpointConfig(type="store.tracker_stor.ClinicTrackerStore", db="x.db")
    with pytest.warns(UserWarning):
        made = TrackerStore.create(config, domain=DOMAIN)
    assert isinstance(made, InMemoryTrackerStore)  # Rasa's silent fallback...

    class Agent:
        tracker_store = FailSafeTrackerStore(made)

    problem = asyncio.run(tracker_store_status(Agent()))
    assert problem and "InMemoryTrackerStore" in problem  # ...is caught by the health check


def _break_sqlite(path: Path) -> Path:
    """Replaces the database file with a folder: every connection fails."""
    moved = path.with_suffix(".moved")
    path.rename(moved)
    path.mkdir()
    return moved


def _repair_sqlite(path: Path, moved: Path) -> None:
    path.rmdir()
    moved.rename(path)


async def test_database_failure_raises_instead_of_using_memory(tmp_path, caplog):
    inner = sqlite_store(tmp_path)
    wrapped = FailSafeTrackerStore(inner)  # what Rasa's Agent does with every store
    await save(wrapped, "alice", conversation("alice"))

    class Agent:
        tracker_store = wrapped

    assert await tracker_store_status(Agent()) is None
    moved = _break_sqlite(tmp_path / "t.db")
    try:
        with pytest.raises(TrackerStoreUnavailable):
            await wrapped.retrieve("alice")
        tracker = DialogueStateTracker.from_events("alice", conversation("alice"), DOMAIN.slots)
        with pytest.raises(TrackerStoreUnavailable):
            await wrapped.save(tracker)
        assert wrapped._fallback_tracker_store is None, "nothing may be kept in memory"
        problem = await tracker_store_status(Agent())
        assert problem and "OperationalError" in problem
    finally:
        _repair_sqlite(tmp_path / "t.db", moved)
    assert await tracker_store_status(Agent()) is None
    assert rows(inner, "alice") == 8
    logged = caplog.text
    assert "Tracker database error" in logged
    assert SECRET not in logged


async def test_plain_sql_store_keeps_rasas_behaviour(tmp_path):
    inner = SQLTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "t.db"))
    wrapped = FailSafeTrackerStore(inner)
    moved = _break_sqlite(tmp_path / "t.db")
    try:
        assert await wrapped.retrieve("alice") is None  # Rasa's fail-safe, unchanged

        class Agent:
            tracker_store = wrapped

        await wrapped.save(DialogueStateTracker.from_events("a", [], DOMAIN.slots))
        problem = await tracker_store_status(Agent())
        assert problem and "memory" in problem
    finally:
        _repair_sqlite(tmp_path / "t.db", moved)


async def test_errors_never_carry_message_text(tmp_path):
    inner = sqlite_store(tmp_path)
    with inner.engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE events"))
        connection.execute(sa.text("CREATE TABLE events (id INTEGER PRIMARY KEY, x TEXT)"))
    tracker = DialogueStateTracker.from_events("alice", conversation("alice"), DOMAIN.slots)
    with pytest.raises(sa.exc.SQLAlchemyError) as caught:
        await inner.save(tracker)
    assert SECRET not in str(caught.value)
