"""The action server is sent the recent turns, not the whole conversation.

Patches `RemoteAction._action_call_format` (checked against Rasa 3.6.21).

Rasa 3.6 serialises every event of the conversation into every call to the action
server, so a call costs more the longer she talks (issue 16: with a patient asking
question after question, JSON and HTTP to the action server grew with every turn).
Our actions read the slots, the latest message and, from the events, only the
current and previous turn (actions/privacy.py: the question before her last reply;
actions/outcome.py and actions/forms.py: this turn); Rasa SDK's form validation reads
only this turn. This sends the same request with the events from the start of the
`TURNS`-th latest user message on (every event when there are fewer). Everything
else (slots, latest message, active loop, latest action, domain) is as Rasa sends it.
tests/test_actions_recent_events.py checks that every action gives the same answer
with the recent events as with all of them.
"""

from __future__ import annotations

from typing import Any, Dict, List

import rasa
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import Event, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity

TURNS = 3


def recent_events(tracker: DialogueStateTracker, turns: int = TURNS) -> List[Event]:
    """The events from the `turns`-th latest user message on (all if fewer)."""
    events = tracker.events
    seen = 0
    for index in range(len(events) - 1, -1, -1):
        if isinstance(events[index], UserUttered):
            seen += 1
            if seen == turns:
                # The action that listened for that message too, as Rasa logs it.
                start = index - 1 if index > 0 else index
                return [events[i] for i in range(start, len(events))]
    return list(events)


def action_call_format(self: RemoteAction, tracker: DialogueStateTracker, domain: Any) -> Dict:
    """Rasa's request to the action server, with the recent events only."""
    state = tracker.current_state(EventVerbosity.NONE)
    state["events"] = [event.as_dict() for event in recent_events(tracker)]
    result: Dict[str, Any] = {
        "next_action": self._name,
        "sender_id": tracker.sender_id,
        "tracker": state,
        "version": rasa.__version__,
    }
    if not self._is_selective_domain_enabled() or domain.does_custom_action_explicitly_need_domain(
        self.name()
    ):
        result["domain"] = domain.as_dict()
    return result


def install() -> None:
    """Sends the recent events instead of all of them (idempotent)."""
    RemoteAction._action_call_format = action_call_format  # type: ignore[method-assign]
