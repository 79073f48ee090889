"""The interview form: extract case fields from every message, decide what to ask next."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecutionRejected, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import interview, render
from triage import triage

FORM = "triage_form"


def debug_enabled() -> bool:
    """`make shell DEBUG=1` sets TRIAGE_DEBUG for the action server: staff see the case."""
    return os.environ.get("TRIAGE_DEBUG", "") not in ("", "0")


def _intent(tracker: Tracker) -> str:
    return (tracker.latest_message.get("intent") or {}).get("name") or ""


def _answering_now(tracker: Tracker) -> bool:
    """True when the form runs on her fresh reply to a question it asked.

    Not at activation (no question pending) and not when the form resumes after a
    rule answered an interruption (the action before the form is not a listen).
    """
    if not tracker.get_slot("requested_slot"):
        return False
    actions = [e.get("name") for e in tracker.events if e.get("event") == "action"]
    return len(actions) >= 2 and actions[-1] == FORM and actions[-2] == "action_listen"


class ActionExtractCase(Action):
    """Slot mapping action, run after every message: what did she tell us?"""

    def name(self) -> str:
        return "action_extract_case"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        requested = tracker.get_slot("requested_slot") if tracker.active_loop_name == FORM else None
        updates = interview.updates_from_message(
            current=tracker.current_slot_values(),
            entities=tracker.latest_message.get("entities") or [],
            intent=_intent(tracker),
            text=tracker.latest_message.get("text"),
            requested=requested,
            confidence=(tracker.latest_message.get("intent") or {}).get("confidence"),
        )
        return [SlotSet(field, value) for field, value in updates.items()]


class ValidateTriageForm(Action):
    """Decides the next question: only what is unknown, not skipped and able to matter."""

    def name(self) -> str:
        return "validate_triage_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        slots = tracker.current_slot_values()
        changed = list(tracker.slots_to_validate())
        intent = _intent(tracker)
        text = tracker.latest_message.get("text") or ""
        requested = slots.get("requested_slot")
        answered = requested in changed or interview.answers_unsure(text)
        if intent in interview.INTERRUPTIONS and _answering_now(tracker):
            if not (answered and intent in interview.ANSWER_FIRST):
                # Step aside: a rule answers (urgent advice, a side question, stop),
                # and the form asks the same question again afterwards.
                return [ActionExecutionRejected(FORM)]
            # "About a week and a half", "idk what that is": an answer to the question
            # just asked comes first, whatever the classifier thought it was.
        if interview.answers_unsure(text) and requested not in changed:
            intent = interview.NOT_SURE
        if interview.is_typed_payload(tracker.latest_message.get("text")):
            intent = "typed_payload"
        said_yes = (
            _answering_now(tracker)
            and slots.get("red_flags") is None
            and interview.screen_yes(
                requested,
                tracker.latest_message.get("text"),
                intent,
                (tracker.latest_message.get("intent") or {}).get("confidence") or 0.0,
            )
        )
        if said_yes:
            # A warning sign she has not named yet: the highest urgency until she does.
            dispatcher.utter_message(response="utter_red_flag_unnamed")
        bookkeeping = interview.after_answer(
            requested=requested,
            slots=slots,
            changed=changed,
            intent=intent,
            reask_count=slots.get("reask_count"),
            skipped=slots.get("skipped"),
            said_yes_to_screen=said_yes,
        )
        slots.update(bookkeeping)
        if slots.get(interview.CHANGED):
            # Only when something she had said was replaced (extract_case tells).
            dispatcher.utter_message(response="utter_correction_noted")
        events = [SlotSet(key, value) for key, value in bookkeeping.items()]
        signs = interview.resolve_red_flags(slots)
        slots.update(signs["updates"])
        events += [SlotSet(key, value) for key, value in signs["updates"].items()]
        if signs["due"]:
            # Signs just confirmed: their urgent advice, first, in this turn.
            for message in render.urgent_now(signs["due"]):
                dispatcher.utter_message(text=message["text"])
            told = [*(slots.get(interview.TOLD) or []), *signs["due"]]
            slots[interview.TOLD] = told
            events.append(SlotSet(interview.TOLD, told))
            case = interview.valid_case_from_slots(slots)
            outcome = triage(case)
            if outcome["urgency"] == "emergency":
                # As the emergency rule does: the interview stops, the outcome is set.
                return [
                    *events,
                    SlotSet("triage", outcome),
                    SlotSet("outcome_given", True),
                    SlotSet("requested_slot", None),
                ]
        if signs["ask"]:
            slots[interview.CONFIRM] = signs["ask"]
            events.append(SlotSet(interview.CONFIRM, signs["ask"]))
            return [*events, SlotSet("requested_slot", interview.CONFIRM)]
        if slots.get(interview.CONTINUE) is False:
            dispatcher.utter_message(response="utter_stop")
            return [*events, SlotSet("requested_slot", None), SlotSet("outcome_given", True)]
        choice = interview.next_after_red_flags(slots)
        if choice:
            return [*events, SlotSet("requested_slot", choice)]
        if "stage" in (slots.get(interview.INFERRED) or []) and slots.get("red_flags") is not None:
            # "34 wks" with no birth mentioned: taken as pregnant; she confirms it once.
            return [*events, SlotSet("requested_slot", "stage")]
        questions = interview.questions_to_ask(slots, slots.get("skipped"))
        if debug_enabled():
            # Rasa drops messages from slot-mapping actions, so the case is shown here.
            case = interview.case_from_slots(slots)
            dispatcher.utter_message(
                text=f"{_debug_reading(tracker)}\n[debug] case: {json.dumps(case)}\n"
                f"[debug] still to ask: {questions}"
            )
        return [*events, SlotSet("requested_slot", questions[0] if questions else None)]


def _debug_reading(tracker: Tracker) -> str:
    """For staff (DEBUG=1): the intent read, its confidence, and the entities found."""
    message = tracker.latest_message or {}
    intent = message.get("intent") or {}
    found = sorted({e.get("entity") for e in message.get("entities") or [] if e.get("entity")})
    return (
        f"[debug] intent: {intent.get('name')} ({float(intent.get('confidence') or 0):.2f}); "
        f"entities: {', '.join(found) or 'none'}"
    )


class ActionAskRedFlags(Action):
    """The safety screen question (the form asks it): the rulebook's list, fitted to her stage."""

    def name(self) -> str:
        return "action_ask_red_flags"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        message = render.screen_question(
            tracker.get_slot("stage"), bool(tracker.get_slot("reasked"))
        )
        dispatcher.utter_message(text=message["text"], buttons=message["buttons"])
        return []


class ActionAskRedFlagConfirm(Action):
    """Asks about one possible warning sign, directly, with Yes / No / Not sure."""

    def name(self) -> str:
        return "action_ask_red_flag_confirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        flag = tracker.get_slot(interview.CONFIRM)
        if not flag:
            return []
        message = render.confirm_question(flag, tracker.get_slot("stage"))
        dispatcher.utter_message(text=message["text"], buttons=message["buttons"])
        return []
