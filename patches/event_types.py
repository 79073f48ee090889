"""An event's class is found by its name in a table, not by walking every subclass.

Patches `rasa.shared.core.events.Event.resolve_by_type` (checked against Rasa 3.6.21).
Rasa finds the class of every event it reads (each event of a tracker loaded from the
database, each event in the action server's reply) by walking all subclasses of
`Event` and checking each one for being abstract; in the profile at 32 conversations
that walk was about 8% of a turn's CPU (issue 16). This looks the name up in a table
built once from the same walk, first class in Rasa's order winning as in Rasa's loop.
A name not in the table (a subclass defined later, the old "topic", an unknown name)
goes to Rasa's own function, so its default and its error are unchanged.
"""

from __future__ import annotations

from typing import Dict, Type

import rasa.shared.utils.common
from rasa.shared.core.events import Event

_ORIGINAL = Event.resolve_by_type
_TABLE: Dict[str, Type[Event]] = {}


def _table() -> Dict[str, Type[Event]]:
    if not _TABLE:
        for cls in rasa.shared.utils.common.all_subclasses(Event):
            _TABLE.setdefault(cls.type_name, cls)
    return _TABLE


def resolve_by_type(type_name: str, default: Type[Event] | None = None) -> Type[Event] | None:
    """Like Rasa's: the event class named `type_name`, from the table when it is there."""
    found = _table().get(type_name)
    if found is not None:
        return found
    return _ORIGINAL(type_name, default)


def install() -> None:
    """Finds event classes in the table (idempotent)."""
    Event.resolve_by_type = staticmethod(resolve_by_type)  # type: ignore[method-assign]
