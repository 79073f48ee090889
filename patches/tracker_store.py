"""No silent switch to memory when the tracker database fails.

Patches `FailSafeTrackerStore.on_tracker_store_error` and
`on_tracker_store_retrieve_error` (checked against Rasa 3.6.21).

Rasa wraps every tracker store in `FailSafeTrackerStore`, which logs a database error
and then keeps the conversation in memory, where it is lost on restart and invisible to
the other servers. When the wrapped store is ours (`store.tracker_store.
ClinicTrackerStore`), the patched handlers log one line without message text and raise
`TrackerStoreUnavailable` instead: the message is not handled, the patient gets the
apology (patches/degraded_mode.py), and nothing is kept anywhere but the database.
Other stores keep Rasa's behaviour.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa.core.tracker_store import FailSafeTrackerStore

from store.tracker_store import (
    ClinicTrackerStore,
    TrackerStoreUnavailable,
    describe_error,
    underlying_store,
)

logger = logging.getLogger(__name__)
HANDLERS = ("on_tracker_store_error", "on_tracker_store_retrieve_error")


def _strict(original: Any) -> Any:
    def on_error(self: FailSafeTrackerStore, error: Exception) -> None:
        if not isinstance(underlying_store(self), ClinicTrackerStore):
            return original(self, error)
        message = describe_error(error)
        logger.error(
            "Tracker database error (%s): this message is not handled and nothing is "
            "kept in memory instead.",
            message,
        )
        raise TrackerStoreUnavailable(message) from error

    on_error.clinic_strict = True  # type: ignore[attr-defined]
    return on_error


def install() -> None:
    """Makes the fail-safe wrapper raise for our store instead of using memory (idempotent)."""
    for name in HANDLERS:
        original = getattr(FailSafeTrackerStore, name)
        if not getattr(original, "clinic_strict", False):
            setattr(FailSafeTrackerStore, name, _strict(original))
