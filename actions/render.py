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
BOOK_BUTTON = {"title": "Book a visit", "payload": "how do I book"}
CHANGE_BUTTON = {"title": "Change something", "payload": "I want to change an answer"}
WHY_BUTTON = {"title": "Why does this happen?", "payload": "why does this happen"}
HELPS_BUTTON = {"title": "What helps?", "payload": "what generally helps"}
LABRAL_BUTTON = {"title": "About labral tears", "payload": "what about my labral tear"}
START_AGAIN_BUTTON = {"title": "Start again", "payload": "start again"}


def _duration(weeks: float) -> str:
    """A span as people say it: "2 weeks", "about 4 weeks", "about 5 months"."""
    if weeks < 1:
        return "under a week"
    if weeks < 9:
        whole = round(weeks)
        about = "" if abs(weeks - whole) < 0.05 else "about "
        return f"{about}{whole} week{'s' if whole != 1 else ''}"
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
    """The outcome, short enough for a phone, urgent advice first and alone.

    After any urgent advice: the headline (the pattern in plain words, whether to book
    a physio and why, the booking button), then what she told us, then the sources with
    buttons for the details (why it happens, what helps, the labral-tear note), each a
    follow-up answer fitted to her outcome (actions/followups.py).
    """
    messages: List[Message] = []
    if outcome["red_flags"]:
        messages.append({"text": urgent_message(outcome)})
        if outcome.get("red_flag_lines"):
            messages.append({"text": " ".join(outcome["red_flag_lines"])})
    elif "red_flags" in outcome["missing"]:
        messages.append({"text": unscreened_message(case.get("stage"))})
    messages.append({"text": headline(outcome), "buttons": [BOOK_BUTTON]})
    messages.append({"text": summary(case), "buttons": [CHANGE_BUTTON]})
    # The last message's buttons are the ones a chat widget keeps on screen: booking and
    # changing an answer stay reachable there too.
    buttons = [BOOK_BUTTON, WHY_BUTTON, HELPS_BUTTON]
    if outcome["labral_tear_note"]:
        buttons.append(LABRAL_BUTTON)
    buttons += [CHANGE_BUTTON, START_AGAIN_BUTTON]
    sources = "; ".join(short_sources(outcome["sources"]))
    messages.append(
        {"text": f"Based on: {sources}. {DISCLAIMER} Tap for more:", "buttons": buttons}
    )
    return messages


def headline(outcome: Mapping[str, Any]) -> str:
    """The pattern in plain words, and whether to book a physio and why."""
    if outcome["pattern"] == "unclear" or not outcome.get("pattern_reason"):
        pattern = outcome["pattern_description"]
    else:
        pattern = outcome["pattern_reason"]
    return f"{pattern} {pt_message(outcome)}"


def details(outcome: Mapping[str, Any], what: str) -> str | None:
    """One detail of her outcome, on a tap: `why` it happens or what `helps`."""
    if what == "why":
        if outcome["pattern"] == "unclear":
            return outcome["explanation"]
        return f"{outcome['pattern_description']} {outcome['explanation']}"
    if what == "helps":
        return " ".join(outcome["advice"])
    return None


def short_sources(sources: List[str]) -> List[str]:
    """Each source document or guidance once, by title, for the chat."""
    titles = []
    for source in sources:
        title = source.split(": ", 1)[-1].split(", '", 1)[0]
        if title not in titles:
            titles.append(title)
    return titles


def pt_message(outcome: Mapping[str, Any]) -> str:
    """Whether and why to book a physio, in a sentence or two, with where to book."""
    settings = clinic.settings()
    where = f"Book at {settings['booking_url']}."
    if outcome["book_pt"]:
        # The first reason, which outranks the rest: one sentence of why on a phone.
        reason = (outcome["book_pt_reasons"] or [""])[0]
        return f"Book a physio: yes. {reason} {where}".replace("  ", " ")
    if outcome["red_flags"]:
        return (
            "A physio can help with the hip once the warning sign above has been checked: "
            f"{settings['booking_url']}."
        )
    return (
        "A physio isn't needed yet. If it isn't better after 3 weeks of exercises, or it "
        f"gets worse, book at {settings['booking_url']}."
    )
