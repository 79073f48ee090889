"""The clinic's tracker store: Rasa's SQL store that fails loudly and can erase.

Configured in endpoints.yml with the same keys as Rasa's `SQL` store::

    tracker_store:
      type: store.tracker_store.ClinicTrackerStore
      dialect: "sqlite"          # or "postgresql"
      db: "var/tracker.db"       # host, port, username, password, login_db, query
      startup_wait: 30           # seconds to wait for the database at start-up

Differences from `rasa.core.tracker_store.SQLTrackerStore`:

- Start-up: the database is tried for `startup_wait` seconds, then the server stops
  with an error (Rasa's own store retries forever; a failed import of a store makes
  Rasa silently use memory, so import errors are re-raised as another type).
- No silent switch to memory: Rasa wraps every store in `FailSafeTrackerStore`,
  which logs and then keeps the conversation in memory when the database fails.
  `patches/tracker_store.py` makes that wrapper raise instead when it wraps this
  store: the message is not handled (the patient gets an apology, see
  patches/degraded_mode.py) and nothing is kept anywhere but the database.
- `check()` is a cheap query for the health check (channels/health.py).
- Turn cost flat in conversation length (store/cache.py): recently used trackers are
  kept in memory (`cache_trackers`, default 512; 0 turns it off) and used only while
  one cheap query finds the database's newest event id for the conversation
  unchanged, so two servers never serve a stale tracker. A save of a tracker read
  from the cache appends only its new events, with one insert.
- Erasure: when the turn being saved ran `action_erase_conversation` and that action
  set `erasure_confirmed` (it is only set when the patient confirmed), every stored
  event of the conversation is deleted instead of saving; nothing is re-inserted, and
  her next message starts a fresh conversation. `erase()` and `purge()` serve staff
  (scripts/tracker_admin.py, `make forget`, `make purge`).
- Errors never carry message text into logs (`hide_parameters`).
"""

from __future__ import annotations

import itertools
import json
import logging
import operator
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List

import sqlalchemy as sa
from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs, is_postgresql_url
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY

from store.cache import DEFAULT_SIZE, Entry, TrackerCache, clone

logger = logging.getLogger(__name__)

ERASE_ACTION = "action_erase_conversation"
ERASE_SLOT = "erasure_confirmed"
DEFAULT_STARTUP_WAIT = 30.0
CONNECT_TIMEOUT = 5
RETRY_SECONDS = 2.0


class TrackerStoreUnavailable(RuntimeError):
    """The tracker database failed while the server was running."""


class TrackerStoreConfigError(RuntimeError):
    """The configured tracker database cannot be used at start-up (one line)."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"tracker_store (endpoints file): {problem}")


def describe_error(error: BaseException) -> str:
    """One short line about an error, without SQL parameters or message text."""
    orig = getattr(error, "orig", None)
    text = str(orig if orig is not None else error).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(orig or error).__name__}: {first[:200]}"


def erasure_confirmed(tracker: DialogueStateTracker) -> bool:
    """True when this turn ran the erase action and it confirmed the erasure."""
    confirmed = ran = False
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            break
        if isinstance(event, SlotSet) and event.key == ERASE_SLOT and event.value is True:
            confirmed = True
        if isinstance(event, ActionExecuted) and event.action_name == ERASE_ACTION:
            ran = True
    return confirmed and ran


class ClinicTrackerStore(SQLTrackerStore):
    """SQL tracker store that never falls back to memory and can erase conversations."""

    def __init__(
        self,
        domain: Domain | None = None,
        dialect: str = "sqlite",
        host: str | None = None,
        port: int | None = None,
        db: str = "rasa.db",
        username: str | None = None,
        password: str | None = None,
        event_broker: EventBroker | None = None,
        login_db: str | None = None,
        query: Dict | None = None,
        startup_wait: float = DEFAULT_STARTUP_WAIT,
        exit_on_error: bool = True,
        cache_trackers: int = DEFAULT_SIZE,
        **kwargs: Any,
    ) -> None:
        """Connects to the database, waiting at most `startup_wait` seconds.

        When it cannot, a server (Rasa builds the store with `exit_on_error` left
        on) stops with one line on stderr naming the setting to fix, exit status 1,
        instead of a traceback through Rasa and Sanic. Tools and tests pass
        `exit_on_error=False` and get the error.

        Raises:
            TrackerStoreConfigError: the database cannot be reached or used (only
                with `exit_on_error=False`).
        """
        self._cache = TrackerCache(int(cache_trackers))
        self._newest_query: Any = None
        try:
            self._connect(
                domain, dialect, host, port, db, username, password, event_broker,
                login_db, query, startup_wait, **kwargs,
            )  # fmt: skip
        except TrackerStoreConfigError as error:
            if not exit_on_error:
                raise
            sys.stderr.write(f"{error}\n")
            sys.stderr.flush()
            os._exit(1)  # a SystemExit would be logged with a traceback by Sanic
        logger.info("Tracker store: %s database '%s' is reachable.", self.engine.name, db)

    def _connect(
        self,
        domain: Domain | None,
        dialect: str,
        host: str | None,
        port: int | None,
        db: str,
        username: str | None,
        password: str | None,
        event_broker: EventBroker | None,
        login_db: str | None,
        query: Dict | None,
        startup_wait: float,
        **kwargs: Any,
    ) -> None:
        # Connection options left empty in the deployment's environment (e.g. no
        # DB_SSLROOTCERT) are not given to the driver at all.
        query = {k: v for k, v in (query or {}).items() if v not in (None, "")} or None
        try:
            url = self.get_db_url(dialect, host, port, db, username, password, login_db, query)
            self._wait_for_database(url, float(startup_wait))
            super().__init__(
                domain, dialect, host, port, db, username, password, event_broker,
                login_db, query, **kwargs,
            )  # fmt: skip
            # Rasa's engine, again with stale-connection checks, a connect timeout and
            # no SQL parameters (message text) in error messages.
            url = self.engine.url
            self.engine.dispose()
            self.engine = _engine(url)
            self.sessionmaker = sa.orm.session.sessionmaker(bind=self.engine)
        except (ImportError, AttributeError) as error:
            # Rasa would swallow these and silently use an in-memory store.
            raise TrackerStoreConfigError(f"cannot build the store: {error}") from error

    @staticmethod
    def _wait_for_database(url: Any, seconds: float) -> None:
        if str(url).startswith("sqlite") and getattr(url, "database", None):
            _prepare_sqlite(Path(url.database))
        engine = _engine(url)
        deadline = time.monotonic() + max(seconds, 0.0)
        try:
            while True:
                try:
                    with engine.connect() as connection:
                        connection.execute(sa.text("SELECT 1"))
                    return
                except sa.exc.SQLAlchemyError as error:
                    if time.monotonic() >= deadline:
                        raise TrackerStoreConfigError(
                            f"{_where(url)} unreachable after {seconds:g} s "
                            f"({describe_error(error)}); check dialect, url, port, db, "
                            "username, password, query (sslmode, sslrootcert) and startup_wait"
                        ) from None
                    logger.warning("Waiting for the tracker database: %s", describe_error(error))
                    time.sleep(RETRY_SECONDS)
        finally:
            engine.dispose()

    def check(self) -> None:
        """Runs a cheap query on the events table; raises if the database is unusable."""
        table = self.SQLEvent.__table__
        with self.engine.connect() as connection:
            connection.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).all()

    @property
    def domain(self) -> Domain:
        """The domain trackers are built with; a new one empties the cache."""
        return self._domain

    @domain.setter
    def domain(self, domain: Domain | None) -> None:
        self._domain = domain or Domain.empty()
        self._cache.clear()

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        """The current session of a conversation, from memory if the database agrees."""
        entry = self._fresh_entry(sender_id)
        return clone(entry.tracker) if entry is not None else None

    async def retrieve_full_tracker(self, conversation_id: str) -> DialogueStateTracker | None:
        """Every session of a conversation; from memory when it has had only one."""
        entry = self._fresh_entry(conversation_id)
        if entry is None:
            return None
        if entry.whole or entry.full is not None:
            return clone(entry.tracker if entry.whole else entry.full)
        return await super().retrieve_full_tracker(conversation_id)

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Saves the new events, or erases the conversation if she confirmed erasure."""
        sender_id = tracker.sender_id
        if erasure_confirmed(tracker):
            self._cache.drop(sender_id)
            count = self.erase(sender_id)
            logger.info("Erased a conversation at the patient's request (%d events).", count)
            return
        entry = self._cache.get(sender_id)
        try:
            if entry is not None and _extends(tracker, entry):
                await self.stream_events(tracker)
                if self._append(tracker, entry):
                    return
            self._cache.drop(sender_id)
            await super().save(tracker)
        except BaseException:
            self._cache.drop(sender_id)
            raise

    # ------------------------------------------------------------------ cache
    def _fresh_entry(self, sender_id: str) -> Entry | None:
        """The cached entry if the database's newest event id still matches, else a read."""
        entry = self._cache.get(sender_id) if self._cache.size else None
        if entry is not None:
            with self.engine.connect() as connection:
                if self._newest_id(connection, sender_id) == entry.newest_id:
                    return entry
            self._cache.drop(sender_id)
        return self._load(sender_id)

    def _newest_id(self, connection: Any, sender_id: str) -> int | None:
        if self._newest_query is None:
            table = self.SQLEvent.__table__
            self._newest_query = sa.select(sa.func.max(table.c.id)).where(
                table.c.sender_id == sa.bindparam("sender")
            )
        return connection.execute(self._newest_query, {"sender": sender_id}).scalar()

    def _load(self, sender_id: str) -> Entry | None:
        """Reads a conversation's events once; caches and returns its current session.

        The session is what Rasa's SQL store returns: the events from the newest
        `SessionStarted` timestamp on (all of them if there is none).
        """
        table = self.SQLEvent.__table__
        query = (
            sa.select(table.c.id, table.c.type_name, table.c.timestamp, table.c.data)
            .where(table.c.sender_id == sender_id)
            .order_by(table.c.id)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        if not rows or not self.domain:
            return None
        starts = [r.timestamp for r in rows if r.type_name == SessionStarted.type_name]
        start = max(starts) if starts else None
        session = [r for r in rows if start is None or r.timestamp >= start]
        tracker = DialogueStateTracker.from_dict(
            sender_id, [json.loads(r.data) for r in session], self.domain.slots
        )
        whole = len(session) == len(rows)
        full = None
        if not whole:  # e.g. her first session's `action_session_start` comes before it
            full = DialogueStateTracker.from_dict(
                sender_id, [json.loads(r.data) for r in rows], self.domain.slots
            )
        self._cache.put(sender_id, tracker, rows[-1].id, whole, full)
        return self._cache.get(sender_id) or Entry(tracker, rows[-1].id, whole, full)

    def _append(self, tracker: DialogueStateTracker, entry: Entry) -> bool:
        """Inserts only the events after the cached ones; False if the database moved on."""
        sender_id = tracker.sender_id
        new = list(itertools.islice(tracker.events, len(entry.tracker.events), None))
        table = self.SQLEvent.__table__
        with self.engine.begin() as connection:
            if self._newest_id(connection, sender_id) != entry.newest_id:
                return False
            if new:
                connection.execute(table.insert(), [_row(sender_id, e) for e in new])
                newest = self._newest_id(connection, sender_id)
            else:
                newest = entry.newest_id
        if any(isinstance(event, SessionStarted) for event in new):
            # A new session: the next read is only that session, from the database.
            self._cache.drop(sender_id)
        else:
            full = None
            if entry.full is not None:
                full = clone(entry.full)
                for event in new:
                    full.update(event)
            self._cache.put(sender_id, tracker, newest, entry.whole, full)
        return True

    def erase(self, sender_id: str) -> int:
        """Deletes every stored event of one conversation; returns how many."""
        self._cache.drop(sender_id)
        table = self.SQLEvent.__table__
        with self.engine.begin() as connection:
            result = connection.execute(table.delete().where(table.c.sender_id == sender_id))
        return int(result.rowcount or 0)

    def senders(self) -> List[str]:
        """Every conversation id in the store."""
        table = self.SQLEvent.__table__
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(table.c.sender_id).distinct()).all()
        return sorted(row[0] for row in rows)

    def purge(self, days: float, now: float | None = None, dry_run: bool = False) -> Dict[str, int]:
        """Deletes what is older than `days` days.

        A conversation with no event in that time is deleted whole. Of a conversation
        still in use, earlier sessions older than that are deleted and its current
        session is kept whole.

        Args:
            days: the retention period in days (>= 0).
            now: the current time (seconds since the epoch; for tests).
            dry_run: count only, delete nothing.

        Returns:
            {"conversations": deleted whole, "events": events deleted in all}.
        """
        if not days >= 0:
            raise ValueError("days must be a number >= 0")
        cutoff = (time.time() if now is None else now) - days * 86400
        self._cache.clear()
        with self.engine.connect() as connection, connection.begin() as transaction:
            counts = self._purge(connection, cutoff)
            if dry_run:
                transaction.rollback()
        return counts

    def _purge(self, connection: Any, cutoff: float) -> Dict[str, int]:
        table = self.SQLEvent.__table__
        stale = connection.execute(
            sa.select(table.c.sender_id)
            .group_by(table.c.sender_id)
            .having(sa.func.max(table.c.timestamp) < cutoff)
        ).all()
        stale_ids = [row[0] for row in stale]
        deleted = 0
        for chunk in _chunks(stale_ids, 500):
            result = connection.execute(table.delete().where(table.c.sender_id.in_(chunk)))
            deleted += int(result.rowcount or 0)
        # Conversations still in use: sessions before the current one, if old enough.
        older = table.alias("older")
        latest_start = (
            sa.select(sa.func.max(older.c.timestamp))
            .where(
                older.c.sender_id == table.c.sender_id,
                older.c.type_name == SessionStarted.type_name,
            )
            .scalar_subquery()
        )
        result = connection.execute(
            table.delete().where(table.c.timestamp < cutoff, table.c.timestamp < latest_start)
        )
        deleted += int(result.rowcount or 0)
        return {"conversations": len(stale_ids), "events": deleted}


def _extends(tracker: DialogueStateTracker, entry: Entry) -> bool:
    """True if `tracker` is the cached one plus new events (the very same event objects)."""
    cached = entry.tracker.events
    if len(tracker.events) < len(cached) or tracker.events.maxlen is not None:
        return False
    return all(map(operator.is_, itertools.islice(tracker.events, len(cached)), cached))


def _row(sender_id: str, event: Any) -> Dict[str, Any]:
    """One events-table row, with the columns Rasa's SQL store writes."""
    data = event.as_dict()
    return {
        "sender_id": sender_id,
        "type_name": event.type_name,
        "timestamp": data.get("timestamp"),
        "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
        "action_name": data.get("name"),
        "data": json.dumps(data),
    }


def _where(url: Any) -> str:
    """The database a URL names, without its password."""
    if str(url).startswith("sqlite"):
        return f"SQLite database '{url.database}'"
    return (
        f"{url.get_backend_name()} at {url.host}:{url.port or 'default port'}, db '{url.database}'"
    )


def _prepare_sqlite(path: Path) -> None:
    """Creates the database's folder (0700) and file (0600): health data, hers only."""
    path = path.expanduser()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
    except OSError as error:
        raise TrackerStoreConfigError(
            f"cannot create the SQLite database '{path}' ({error.strerror}); check db"
        ) from None


def _chunks(items: List[str], size: int) -> Iterable[List[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _engine(url: Any) -> sa.engine.Engine:
    kwargs = create_engine_kwargs(url)
    connect_args = dict(kwargs.pop("connect_args", {}))
    if is_postgresql_url(url):
        connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT)
    elif str(url).startswith("sqlite"):
        connect_args.setdefault("timeout", 15)
    return sa.create_engine(
        url, pool_pre_ping=True, hide_parameters=True, connect_args=connect_args, **kwargs
    )


def underlying_store(store: Any) -> Any:
    """The store inside Rasa's FailSafe / Awaitable wrappers."""
    for _ in range(5):
        inner = getattr(store, "_tracker_store", None)
        if inner is None:
            break
        store = inner
    return store
