"""Session start: a fresh case, and the clinic's settings as slots for the responses."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from triage import clinic


def clinic_slots() -> List[EventType]:
    """SlotSet events carrying the clinic settings used by domain responses."""
    settings = clinic.settings()
    return [
        SlotSet("clinic_loaded", True),
        SlotSet("clinic_name", settings["name"]),
        SlotSet("clinic_phone", settings["phone"]),
        SlotSet("emergency_number", settings["emergency_number"]),
        SlotSet("maternity_line", settings["maternity_line"]),
        SlotSet("booking_url", settings["booking_url"]),
    ]


class ActionSessionStart(Action):
    """Starts a session with no slots carried over, then loads the clinic settings."""

    def name(self) -> str:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        return [SessionStarted(), *clinic_slots(), ActionExecuted("action_listen")]
