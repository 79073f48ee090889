"""Answers to her side questions, from the rulebook's sourced follow-up texts."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions import render
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


# After the outcome, these answer about her own pattern (render.details).
DETAIL_FOR_INTENT = {"ask_why": "why", "ask_what_helps": "helps"}


def answer(intent: str, outcome: Dict[str, Any] | None = None) -> str:
    """The follow-up answer for an `ask_*` intent, with clinic details filled in.

    With her outcome (the `triage` slot), "why" and "what helps" are about her pattern,
    her stage and her answers; without one, the rulebook's general answer.
    """
    if intent == "ask_human":
        return clinic.fill(HUMAN)
    if isinstance(outcome, dict) and intent in DETAIL_FOR_INTENT and outcome.get("pattern"):
        text = render.details(outcome, DETAIL_FOR_INTENT[intent])
        if text:
            return clinic.fill(text)
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
        dispatcher.utter_message(text=answer(intent, tracker.get_slot("triage")))
        return []
