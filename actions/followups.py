"""Answers to her side questions, from the rulebook's sourced follow-up texts."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from triage import clinic, rulebook

FOLLOWUP_FOR_INTENT = {
    "ask_why": "why",
    "ask_what_helps": "what_helps",
    "ask_how_long": "how_long",
    "ask_running": "running",
    "ask_labral_tear": "labral_tear",
    "ask_booking": "booking",
    "ask_surgery": "surgery",
}
BOOKING = " To book with {clinic_name}, go to {booking_url} or call {clinic_phone}."
HUMAN = (
    "You can talk to someone at {clinic_name} on {clinic_phone}. If it's urgent, call your "
    "midwife or doctor, or {emergency_number} in an emergency."
)


def answer(intent: str) -> str:
    """The follow-up answer for an `ask_*` intent, with clinic details filled in."""
    if intent == "ask_human":
        return clinic.fill(HUMAN)
    key = FOLLOWUP_FOR_INTENT.get(intent, "why")
    text = rulebook()["followups"][key]["text"]
    return clinic.fill(text + (BOOKING if key == "booking" else ""))


class ActionAnswerFollowup(Action):
    """Answers why / what helps / how long / running / labral tear / booking / a person."""

    def name(self) -> str:
        return "action_answer_followup"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name") or ""
        dispatcher.utter_message(text=answer(intent))
        return []
