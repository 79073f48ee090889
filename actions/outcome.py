"""The outcome actions: the only code that sets the `triage` slot."""

from __future__ import annotations

import json
from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import interview, render
from actions.forms import debug_enabled
from triage import triage


def _case_and_outcome(tracker: Tracker) -> tuple:
    case = interview.valid_case_from_slots(tracker.current_slot_values())
    return case, triage(case)


def _send(dispatcher: CollectingDispatcher, messages: List[Dict[str, Any]]) -> None:
    for message in messages:
        dispatcher.utter_message(text=message["text"], buttons=message.get("buttons") or [])


def _changed_this_turn(tracker: Tracker) -> bool:
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return False
        if event.get("event") == "slot" and event.get("name") in interview.QUESTION_ORDER:
            return True
    return False


def _emergency_told_this_turn(tracker: Tracker, outcome: Dict[str, Any]) -> bool:
    if outcome["urgency"] != "emergency":
        return False
    advice = render.urgent_message(outcome)
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return False
        if event.get("event") == "bot" and event.get("text") == advice:
            return True
    return False


class ActionGiveOutcome(Action):
    """Runs the engine on the finished case and tells her the outcome."""

    def name(self) -> str:
        return "action_give_outcome"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if tracker.get_slot("outcome_given") and intent == "correct":
            if not _changed_this_turn(tracker):
                dispatcher.utter_message(response="utter_ask_correction")
                return []
        case, outcome = _case_and_outcome(tracker)
        events = [SlotSet("triage", outcome), SlotSet("outcome_given", True)]
        if tracker.get_slot(interview.CONTINUE) is False or _emergency_told_this_turn(
            tracker, outcome
        ):
            # She chose to stop after urgent advice, or the interview just ended on an
            # emergency whose advice she has had: nothing is sent on top of it.
            return events
        _send(dispatcher, render.outcome_messages(case, outcome))
        if debug_enabled():
            dispatcher.utter_message(text="[debug] outcome: " + json.dumps(outcome))
        return events


class ActionRecordRedFlag(Action):
    """After the urgent advice: say what worried us; after an emergency, set the outcome."""

    def name(self) -> str:
        return "action_record_red_flag"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        case, outcome = _case_and_outcome(tracker)
        text = render.red_flag_message(outcome)
        if text:
            dispatcher.utter_message(text=text)
        # The domain response gave the advice for every sign recorded so far.
        told = [SlotSet(interview.TOLD, list(outcome["red_flags"]))]
        if outcome["urgency"] != "emergency":
            if tracker.get_slot("outcome_given"):
                return [*told, SlotSet("triage", outcome)]
            return told
        # The rule has already stopped the interview (action_deactivate_loop).
        return [*told, SlotSet("triage", outcome), SlotSet("outcome_given", True)]
