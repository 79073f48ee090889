"""ClinicTrackerStore on SQLite and PostgreSQL: erasure, purge, loud failures, no memory.

PostgreSQL tests start Debian's postgresql (`apt-get install postgresql`) on a free
port with a data directory under /tmp, and tear it down; they are skipped, with the
reason, only when initdb is not installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
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
    TrackerStoreUnavailable,
)
from tests.needs import missing

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = Domain.load(str(ROOT / "domain.yml"))


@pytest.fixture(autouse=True, scope="module")
def rasa_patches():
    """As in a Rasa server with our config.yml: the no-memory-fallback patch is on."""
    patches.install()


SECRET = "I am 31 weeks pregnant and bleeding"  # must never reach a log or error message


# --- PostgreSQL, started by the tests ------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class Postgres:
    """A throw-away PostgreSQL server on 127.0.0.1 (as user `postgres` when run as root)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="clinic-pg-"))
        self.port = _free_port()
        self.db = "rasa"
        self._demote = None
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)

            def demote() -> None:
                os.setgid(user.pw_gid)
                os.setuid(user.pw_uid)

            self._demote = demote

    def _run(self, *args: str) -> None:
        subprocess.run(
            args, check=True, capture_output=True, preexec_fn=self._demote, cwd="/", timeout=120
        )

    def start(self) -> Postgres:
        data = self.dir / "data"
        if not data.exists():
            self._run(postgres_bin("initdb"), "-D", str(data), "-U", "postgres",
                      "--auth=trust", "-E", "UTF8")  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir} "
            "-c fsync=off -c full_page_writes=off"
        )
        self._run(postgres_bin("pg_ctl"), "-D", str(data), "-w", "-t", "60",
                  "-l", str(self.dir / "postgres.log"), "-o", options, "start")  # fmt: skip
        engine = sa.create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            exists = connection.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :db"), {"db": self.db}
            ).first()
            if not exists:
                connection.execute(sa.text(f"CREATE DATABASE {self.db}"))
        engine.dispose()
        return self

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(postgres_bin("pg_ctl"), "-D", str(self.dir / "data"), "-w", "-m",
                      "immediate", "stop")  # fmt: skip

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, db: str | None = None) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db or self.db}"

    def store_kwargs(self) -> dict:
        return {"dialect": "postgresql", "host": "127.0.0.1", "port": self.port,
                "db": self.db, "username": "postgres"}  # fmt: skip

    def endpoints_section(self, startup_wait: float = 5) -> str:
        return (
            "tracker_store:\n  type: store.tracker_store.ClinicTrackerStore\n"
            f"  dialect: postgresql\n  url: 127.0.0.1\n  port: {self.port}\n"
            f"  db: {self.db}\n  username: postgres\n  startup_wait: {startup_wait}\n"
        )


def postgres_missing() -> str | None:
    """Why PostgreSQL tests cannot run here, or None."""
    if not postgres_bin("initdb") or not postgres_bin("pg_ctl"):
        return "PostgreSQL's initdb is not installed (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root needs the `postgres` user (apt-get install postgresql)"
    return None


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


def test_start_fails_fast_when_the_sqlite_folder_is_missing(tmp_path):
    with pytest.raises(TrackerStoreUnavailable, match="does not exist"):
        ClinicTrackerStore(DOMAIN, dialect="sqlite", db=str(tmp_path / "nowhere" / "t.db"))


def test_start_fails_after_startup_wait_when_postgresql_is_unreachable():
    if postgres_missing():
        missing(postgres_missing())
    started = time.monotonic()
    with pytest.raises(TrackerStoreUnavailable, match="unreachable after 1 s"):
        ClinicTrackerStore(
            DOMAIN, dialect="postgresql", host="127.0.0.1", port=_free_port(), db="rasa",
            username="postgres", startup_wait=1,
        )  # fmt: skip
    assert time.monotonic() - started < 20


def test_rasa_does_not_swap_a_failing_clinic_store_for_memory(tmp_path):
    config = EndpointConfig(
        type="store.tracker_store.ClinicTrackerStore",
        dialect="sqlite",
        db=str(tmp_path / "missing" / "t.db"),
    )
    with pytest.raises(TrackerStoreUnavailable):
        TrackerStore.create(config, domain=DOMAIN)


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
