"""Recently used trackers in memory, trusted only while the database agrees.

Rasa 3.6 reads every event of the conversation from the database and replays them
all on every turn, so a turn costs more the longer she talks (issue 16). The store
keeps the trackers it has recently read or saved here, each with the id of the
newest event the database held for that conversation at the time. Before a cached
tracker is used, one query reads the database's newest id for the conversation: if
another server (or staff erasure) wrote or deleted anything, the ids differ and the
tracker is read again. A cached tracker is never handed out: callers get a `clone`,
so nothing they do to it reaches the cache unless it is saved.

Message text lives here only in memory, as it does while a turn runs; erasure drops
the entry, and the cache holds at most `size` conversations (least recently used
leave first).
"""

from __future__ import annotations

import copy
from collections import OrderedDict, deque
from dataclasses import dataclass

from rasa.shared.core.trackers import DialogueStateTracker

DEFAULT_SIZE = 512


@dataclass
class Entry:
    """One cached conversation: a private tracker and what the database held then."""

    tracker: DialogueStateTracker
    newest_id: int
    whole: bool  # the tracker holds every stored event (one session), not only the last
    full: DialogueStateTracker | None = None  # every session, when not `whole` (private)


def clone(tracker: DialogueStateTracker) -> DialogueStateTracker:
    """A tracker equal to `tracker` that can change without changing it.

    The events themselves are shared (Rasa treats events as records; replaying a
    tracker shares them the same way); the containers that change as events are
    applied (the event deque, the slots, the active loop, the latest action) are
    new. Costs a pointer copy per event instead of a replay of every event.
    """
    twin = object.__new__(type(tracker))
    twin.__dict__.update(tracker.__dict__)
    twin.events = deque(tracker.events, maxlen=tracker.events.maxlen)
    twin.slots = type(tracker.slots)(
        (name, copy.copy(slot)) for name, slot in tracker.slots.items()
    )
    for name in ("latest_action", "active_loop"):
        value = getattr(tracker, name, None)
        if isinstance(value, dict):
            setattr(twin, name, dict(value))
    return twin


class TrackerCache:
    """At most `size` entries by conversation id, least recently used dropped first."""

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        if size < 0:
            raise ValueError("the tracker cache size must be 0 (off) or more")
        self.size = size
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, sender_id: str) -> Entry | None:
        """The entry of one conversation, if cached (marked as just used)."""
        entry = self._entries.get(sender_id)
        if entry is not None:
            self._entries.move_to_end(sender_id)
        return entry

    def put(
        self, sender_id: str, tracker: DialogueStateTracker, newest_id: int, whole: bool,
        full: DialogueStateTracker | None = None,
    ) -> None:  # fmt: skip
        """Caches a private clone of `tracker`, stored up to event id `newest_id`.

        `full` (every session, when `tracker` holds only the last) must be private
        already: the cache keeps it as it is.
        """
        if self.size == 0:
            return
        self._entries[sender_id] = Entry(clone(tracker), newest_id, whole, full)
        self._entries.move_to_end(sender_id)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def drop(self, sender_id: str) -> None:
        """Forgets one conversation."""
        self._entries.pop(sender_id, None)

    def clear(self) -> None:
        """Forgets every conversation."""
        self._entries.clear()
