"""Turns a case and its outcome into short chat messages (no Rasa import).

Texts come from the rulebook (via the engine's outcome) and clinic.yml; this
module only chooses and orders them. Urgent advice is always its own, first
message. Plain text only: every channel shows it as written.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

from triage import clinic, rulebook, triage
from triage.contract import FIELDS, QUESTION_ORDER

Message = Dict[str, Any]


def _words(field: str, value: Any) -> str | None:
    """How the summary says one value of a case field (the contract's plain words)."""
    return FIELDS[field]["words"][value]


# The yes/no fields, in the order she was asked them.
SUMMARY_YES_NO = [name for name in QUESTION_ORDER if FIELDS[name]["kind"] == "bool"]
DISCLAIMER = "This is not a diagnosis."
UNSCREENED = (
    "I couldn't complete the safety check. If you have {signs}, call {{emergency_number}} "
    "or your maternity unit now."
)
YES_NO_UNSURE = [
    {"title": "Yes", "payload": "yes"},
    {"title": "No", "payload": "no"},
    {"title": "Not sure", "payload": "not sure"},
]
NONE_BUTTON = {"title": "None of these", "payload": "none of these"}
YES_BUTTON = {"title": "Yes, one of these", "payload": "yes"}
AFTER_OUTCOME_BUTTONS = [
    {"title": "Book a visit", "payload": "how do I book"},
    {"title": "Why does this happen?", "payload": "why does this happen"},
    {"title": "Start again", "payload": "start again"},
]


def _duration(weeks: float) -> str:
    if weeks < 1:
        return "under a week"
    if weeks < 9:
        return f"{weeks:g} week{'s' if weeks != 1 else ''}"
    if weeks < 104:
        return f"about {round(weeks / 4.345)} months"
    return f"about {round(weeks / 52.18)} years"


def _stage(case: Mapping[str, Any]) -> List[str]:
    stage, weeks = case.get("stage"), case.get("weeks")
    if stage == "pregnant":
        return [f"{weeks} weeks pregnant" if weeks is not None else _words("stage", stage)]
    if stage == "postpartum":
        return [
            f"baby born {_duration(weeks)} ago" if weeks is not None else _words("stage", stage)
        ]
    return []


def summary(case: Mapping[str, Any]) -> str:
    """One line of what she told us, in her terms, so she can correct it."""
    parts = _stage(case)
    if case.get("locations"):
        parts.append(", ".join(_words("locations", x) for x in case["locations"]))
    if case.get("qualities"):
        parts.append(", ".join(_words("qualities", x) for x in case["qualities"]))
    if case.get("triggers"):
        parts.append("worse with " + ", ".join(_words("triggers", x) for x in case["triggers"]))
    for field in SUMMARY_YES_NO:
        value = case.get(field)
        text = _words(field, value) if isinstance(value, bool) else None
        if text:
            parts.append(text)
    if case.get("severity") is not None:
        parts.append(f"{case['severity']}/10")
    if case.get("weeks_of_pain") is not None:
        parts.append(f"for {_duration(case['weeks_of_pain'])}")
    if case.get("red_flags") == []:
        parts.append("none of the warning signs")
    if not parts:
        return "Here's what you told me: not much yet."
    return "Here's what you told me: " + "; ".join(parts) + "."


def screen_signs(stage: str | None) -> List[Dict[str, Any]]:
    """The safety screen's warning signs for her stage (the rulebook's list)."""
    key = stage if stage in ("pregnant", "postpartum") else "unknown"
    return [
        {**sign, "words": sign["text"][key]}
        for sign in rulebook()["safety_screen"]["signs"]
        if key in sign["text"]
    ]


def _listed(stage: str | None, joiner: str) -> str:
    return joiner.join(sign["words"] for sign in screen_signs(stage))


def screen_question(stage: str | None, reasked: bool = False) -> Message:
    """The red-flag screen: the list fitted to her stage; the re-ask is a picker."""
    screen = rulebook()["safety_screen"]
    if reasked:
        buttons = [NONE_BUTTON] + [dict(sign["button"]) for sign in screen_signs(stage)]
        return {"text": screen["picker"], "buttons": buttons}
    listed = _listed(stage, " · ")
    text = f"{screen['question']} {listed[:1].upper()}{listed[1:]}"
    return {"text": text, "buttons": [NONE_BUTTON, YES_BUTTON]}


def unscreened_message(stage: str | None) -> str:
    """Her red-flag screen was never answered: the signs to act on, for her stage."""
    return clinic.fill(UNSCREENED.format(signs=_listed(stage, ", ")))


def confirm_question(flag: str, stage: str | None) -> Message:
    """One possible warning sign, asked about directly, naming the rulebook's threshold."""
    confirm = next(r for r in rulebook()["red_flags"] if r["id"] == flag)["confirm"]
    key = stage if stage in ("pregnant", "postpartum") else "unknown"
    ask = confirm.get("all") or confirm.get(key) or confirm["unknown"]
    return {"text": f"You mentioned {confirm['said']}. {ask}", "buttons": YES_NO_UNSURE}


def urgent_now(flags: List[str]) -> List[Message]:
    """The urgent advice for signs just confirmed: the advice first and alone, then why."""
    outcome = triage({"red_flags": list(flags)})
    return [{"text": urgent_message(outcome)}, {"text": red_flag_message(outcome)}]


def urgent_message(outcome: Mapping[str, Any]) -> str:
    """The urgent advice for the outcome's highest red flag, with clinic numbers."""
    return clinic.fill(outcome["urgent_advice"])


def red_flag_message(outcome: Mapping[str, Any]) -> str:
    """What she told us that worries us, for after the urgent advice."""
    lines = outcome.get("red_flag_lines") or []
    text = " ".join(lines)
    extra = ' When you are safe, you can type "start again" to ask about your hip.'
    if outcome["urgency"] == "emergency":
        return (text + extra).strip()
    return text


def outcome_messages(case: Mapping[str, Any], outcome: Mapping[str, Any]) -> List[Message]:
    """All messages of the outcome, urgent advice first and alone."""
    messages: List[Message] = []
    if outcome["red_flags"]:
        messages.append({"text": urgent_message(outcome)})
        if outcome.get("red_flag_lines"):
            messages.append({"text": " ".join(outcome["red_flag_lines"])})
    elif "red_flags" in outcome["missing"]:
        messages.append({"text": unscreened_message(case.get("stage"))})
    messages.append(
        {
            "text": summary(case),
            "buttons": [{"title": "Change something", "payload": "I want to change an answer"}],
        }
    )
    if outcome["pattern"] == "unclear":
        body = outcome["pattern_description"]
    else:
        body = f"This sounds most like {outcome['pattern_name']}. {outcome['pattern_description']}"
    messages.append({"text": f"{body}\n\nWhy it happens: {outcome['explanation']}"})
    messages.append({"text": "What generally helps: " + " ".join(outcome["advice"])})
    messages.append({"text": pt_message(outcome)})
    if outcome["labral_tear_note"]:
        messages.append({"text": outcome["labral_tear_text"]})
    sources = "; ".join(short_sources(outcome["sources"]))
    messages.append(
        {"text": f"Based on: {sources}. {DISCLAIMER}", "buttons": AFTER_OUTCOME_BUTTONS}
    )
    return messages


def short_sources(sources: List[str]) -> List[str]:
    """Each source document or guidance once, by title, for the chat."""
    titles = []
    for source in sources:
        title = source.split(": ", 1)[-1].split(", '", 1)[0]
        if title not in titles:
            titles.append(title)
    return titles


def pt_message(outcome: Mapping[str, Any]) -> str:
    """Whether and why to book a physio, with the booking link."""
    settings = clinic.settings()
    if outcome["book_pt"]:
        reasons = " ".join(outcome["book_pt_reasons"])
        return (
            f"Book a physio: yes. {reasons} You can book with {settings['name']} at "
            f"{settings['booking_url']} or call {settings['phone']}."
        )
    if outcome["red_flags"]:
        return (
            "Book a physio: first get the warning sign above checked by your midwife or "
            "doctor, as advised. A physio can help with the hip after that: "
            f"{settings['booking_url']}."
        )
    return (
        "Book a physio: not needed right now, from what you told me. If it isn't getting "
        "better after about 3 weeks of consistent exercise, or it gets worse, book at "
        f"{settings['booking_url']}."
    )
