"""Erasure: `action_erase_conversation`, run after she confirmed "delete my data"."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

CONFIRM_QUESTION = "utter_delete_data"
ERASE_SLOT = "erasure_confirmed"


def asked_to_confirm(tracker: Tracker) -> bool:
    """True if the bot's last action before her latest message was the erasure question."""
    seen_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            if seen_user:
                return False
            seen_user = True
        elif seen_user and event.get("event") == "action":
            if event.get("name") == "action_listen":
                continue
            return event.get("name") == CONFIRM_QUESTION
    return False


class ActionEraseConversation(Action):
    """Tells her it is done and marks the turn; the tracker store then erases it all.

    The deletion is done by the Rasa server's tracker store (store/tracker_store.py):
    seeing this action and `erasure_confirmed` in the turn, it deletes every stored
    event of the conversation instead of saving. If this action fails (action server
    down), the slot is not set and nothing is deleted.
    """

    def name(self) -> str:
        return "action_erase_conversation"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        if not asked_to_confirm(tracker):
            dispatcher.utter_message(response="utter_erase_cancelled")
            return []
        dispatcher.utter_message(response="utter_erased")
        return [SlotSet(ERASE_SLOT, True)]
