"""The interview's logic, without Rasa: what a message adds to the case, what to ask next.

Slots carry the triage contract's case fields, so the slots ARE the case. Only
entities found by our own extractor count: anything typed as a `/intent{...}`
payload is ignored, so no one can set, clear or skip a field by typing one.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Mapping

from triage import (
    FIELDS,
    CaseError,
    red_flag_applies,
    red_flag_urgency,
    validate_case,
    worth_asking,
)
from triage.contract import QUESTION_ORDER

EXTRACTOR = "CaseEntityExtractor"
# Warning signs to ask about, and how each was said (components/red_flag_reading.py).
PENDING, CONFIRM, RULED_OUT, TOLD, CONTINUE = (
    "pending_red_flags", "red_flag_confirm", "ruled_out_red_flags", "urgent_told",
    "continue_after_urgent",
)  # fmt: skip
TO_CONFIRM = {"pregnancy_red_flags": "clear", "possible_red_flags": "possible"}
CARRY_ON = re.compile(r"\b(carry on|continue|go on|keep going|more questions|yes|yeah|ok|okay)\b")
STOP_HERE = re.compile(r"\b(stop|no|nope|that's all|thats all|enough|not now|later)\b")

# Asked whenever unknown, whatever the rules say: the safety screen.
ALWAYS_ASK = {"red_flags"}
AFFIRM, DENY, NOT_SURE, CORRECT = "affirm", "deny", "not_sure", "correct"
ANSWER_INTENTS = {"inform", "describe_pain", AFFIRM, DENY, CORRECT, "nlu_fallback", "out_of_scope"}
# Intents that interrupt the interview: the form steps aside so a rule can answer,
# then the same question comes back (red flags, side questions, stop, small talk).
INTERRUPTIONS = {
    "red_flag_emergency", "red_flag_urgent", "ask_why", "ask_what_helps", "ask_how_long",
    "ask_labral_tear", "ask_running", "ask_booking", "ask_surgery", "ask_human", "stop", "help",
    "bot_challenge", "greet", "goodbye", "thanks", "start", "delete_data",
}  # fmt: skip
# Answers that can look like something else to the classifier ("about a week and a
# half" as a bot challenge, "idk what that is" as a call for help): read as answers first.
ANSWER_FIRST = {"bot_challenge", "help", "greet", "thanks", "goodbye"}
CHANGED = "changed_fields"  # fields whose earlier answer this message replaced
INFERRED = "inferred"  # fields worked out rather than said: confirmed before the outcome
# When the pain began: "birth", "birth+N" (N weeks after it), or the weeks pregnant then.
ONSET = "pain_since"
CORRECTION_CUES = re.compile(r"^\W*(actually|sorry|oops|no wait|wait|i meant|correction)\b", re.I)
NONE_PHRASES = ("none of these", "none of those", "none", "nothing like that")
REASK_LIMIT = 2
YES_NO_CONFIDENCE = 0.8  # below this, "yes"/"no" must be in her words, not only in the intent
YES_WORDS = {
    "yes", "yeah", "yep", "yup", "yea", "ya", "y", "yess", "definitely", "absolutely", "sure",
    "correct", "right", "true", "does", "do", "did", "is", "am", "certainly", "totally", "ok",
    "okay", "course", "indeed", "always", "often",
}  # fmt: skip
NO_WORDS = {
    "no", "nope", "nah", "n", "never", "not", "none", "nothing", "don't", "dont", "doesn't",
    "doesnt", "isn't", "isnt", "haven't", "havent", "hasn't", "didn't", "didnt", "nop",
}  # fmt: skip
# Words that answer yes only with more context ("it does"), never as a first word:
# "right side", "does it matter?", "is that bad?".
NOT_FIRST_YES = {"right", "does", "do", "did", "is", "am"}
# "I don't know", "no idea": unsure, not no (on the safety screen "no" means "none").
UNSURE = re.compile(
    r"\b(not sure|don'?t know|do not know|dunno|no idea|no clue|unsure|not certain|"
    r"can'?t tell|cannot tell|don'?t understand|do not understand|maybe|perhaps|idk)\b"
)
FIRST_WORD = re.compile(r"[^a-z]*([a-z']+)")
WORD = re.compile(r"[a-z']+")


def yes_or_no(text: str, intent: str, confidence: float = 1.0) -> bool | None:
    """Reads yes or no from her words; the intent only decides between the two.

    A yes needs a yes-word ("yes", "yeah", "it does", "definitely") and a no a
    no-word ("no", "nope", "not really", "don't"): a classifier's guess on "purple"
    or on markup is never taken as an answer.
    """
    lowered = text.lower().replace("’", "'")
    if intent == NOT_SURE or UNSURE.search(lowered):
        return None
    words = set(WORD.findall(lowered))
    has_yes, has_no = bool(words & YES_WORDS), bool(words & NO_WORDS)
    if intent in (AFFIRM, DENY) and confidence >= YES_NO_CONFIDENCE:
        if intent == AFFIRM and has_yes:
            return True
        if intent == DENY and has_no:
            return False
    match = FIRST_WORD.match(lowered)
    word = match.group(1) if match else ""
    if word in YES_WORDS - NOT_FIRST_YES:
        return True
    return False if word in NO_WORDS else None


def screen_yes(requested: str | None, text: str | None, intent: str, confidence: float) -> bool:
    """She answered the red-flag screen "yes" without saying which warning sign."""
    if requested != "red_flags" or not text or is_typed_payload(text):
        return False
    return yes_or_no(text, intent, confidence) is True


def answers_unsure(text: str | None) -> bool:
    """She doesn't know the answer: "not sure", "idk", "no idea"."""
    return bool(text) and bool(UNSURE.search(text.lower().replace("’", "'")))


def is_correction(intent: str | None, text: str | None) -> bool:
    """A correction by intent, or by how it starts ("actually it's more on the side")."""
    return intent == CORRECT or bool(CORRECTION_CUES.match(text or ""))


def kind(field: str) -> str:
    """The contract type of a case field: enum, list, bool, int or number."""
    return FIELDS[field]["kind"]


def is_typed_payload(text: str | None) -> bool:
    """True for text like `/inform{...}`: never trusted as an answer."""
    return bool(text) and text.lstrip().startswith("/")


def valid_case_from_slots(slots: Mapping[str, Any]) -> Dict[str, Any]:
    """Like `case_from_slots`, leaving out any field the contract would refuse.

    Slots are checked as they are set, so this only matters for slots set some
    other way (an older tracker, a domain change): never crash on her answers.
    """
    case = case_from_slots(slots)
    for _ in range(len(case)):
        try:
            validate_case(case)
            return case
        except CaseError as error:
            if error.field not in case or error.field == "red_flags":
                raise
            del case[error.field]
    return case


def case_from_slots(slots: Mapping[str, Any]) -> Dict[str, Any]:
    """Builds a contract case from slot values (unknown fields left out)."""
    case: Dict[str, Any] = {}
    for field in FIELDS:
        value = slots.get(field)
        if value is None:
            continue
        if kind(field) == "list":
            if not value and field != "red_flags":
                continue
            value = list(value)
        elif kind(field) == "int":
            value = int(round(float(value)))
        case[field] = value
    return case


def _valid(field: str, value: Any, stage: str | None) -> bool:
    probe = {field: value}
    if field == "weeks" and stage:
        probe["stage"] = stage
    try:
        validate_case(probe)
    except CaseError:
        return False
    return True


def _found_values(entities: Iterable[Mapping[str, Any]]) -> Dict[str, Any]:
    found: Dict[str, Any] = {}
    for entity in entities:
        if entity.get("extractor") != EXTRACTOR:
            continue
        name, value = entity.get("entity"), entity.get("value")
        if name in ("number", "duration", ONSET):
            found.setdefault(f"_{name}", value)
        elif name in FIELDS:
            if kind(name) == "list":
                found.setdefault(name, [])
                if value not in found[name]:
                    found[name].append(value)
            elif name == "severity" and found.get(name) is not None:
                found[name] = max(found[name], value)  # "7 walking, 3 at rest": at its worst
            elif name == "stage" and found.get(name) == "pregnant":
                continue  # "30 weeks pregnant, my toddler is at nursery": pregnant now
            else:
                found[name] = value
    return found


def _contextual_answer(
    requested: str,
    found: Dict[str, Any],
    intent: str,
    text: str,
    current: Mapping[str, Any],
    confidence: float,
) -> Dict[str, Any]:
    """Reads a short answer ("yes", "5", "2 weeks", "none") as the requested field."""
    number, duration = found.get("_number"), found.get("_duration")
    field_kind = kind(requested)
    if requested == "qualities" and found.get("tight") is True:
        return {"qualities": ["tight"]}  # "tight" answers "what does it feel like?"
    answer = yes_or_no(text, intent, confidence)
    if requested == "red_flags":
        said_none = answer is False or text.strip(" .!").lower() in NONE_PHRASES
        return {"red_flags": []} if said_none and current.get("red_flags") is None else {}
    if field_kind == "bool" and answer is not None:
        return {requested: answer}
    if requested == "severity" and number is not None:
        return {"severity": int(round(float(number)))}
    if requested == "weeks" and (number is not None or duration is not None):
        return {"weeks": int(round(float(number if number is not None else duration)))}
    if requested == "weeks_of_pain" and (duration is not None or number is not None):
        return {"weeks_of_pain": float(duration if duration is not None else number)}
    return {}


def updates_from_message(
    current: Mapping[str, Any],
    entities: Iterable[Mapping[str, Any]],
    intent: str | None,
    text: str | None,
    requested: str | None = None,
    confidence: float | None = None,
) -> Dict[str, Any]:
    """Returns the case fields this message sets or changes.

    Args:
        current: the slots as they are (case fields; None means unknown).
        entities: the message's entities (only our extractor's are used).
        intent: the message's intent name.
        text: the message text.
        requested: the field being asked, if the interview is waiting for one.
        confidence: the intent's confidence (a shaky "affirm" is not a yes).
    """
    if is_typed_payload(text):
        return {}
    intent = intent or ""
    correcting = is_correction(intent, text)
    found = _found_values(entities)
    if requested == "weeks_of_pain" and "weeks_of_pain" not in found and "weeks" in found:
        # Asked how long it has hurt, "6 weeks, it came on slowly" is how long.
        if current.get("weeks") is not None or current.get("stage") is not None:
            found["weeks_of_pain"] = float(found.pop("weeks"))
    if requested in FIELDS and requested not in found:
        sure = 1.0 if confidence is None else confidence
        found.update(_contextual_answer(requested, found, intent, text or "", current, sure))

    stage = found.get("stage", current.get("stage"))
    updates: Dict[str, Any] = {}
    for field, value in found.items():
        if field.startswith("_"):
            continue
        old = current.get(field)
        if field == "red_flags":
            # A reported red flag is never cleared; "none" only answers an open screen.
            new = list(dict.fromkeys([*(old or []), *value])) if value or old is None else old
        elif kind(field) == "list" and old and not correcting and field != requested:
            new = list(dict.fromkeys([*old, *value]))
        else:
            new = value
        if new != old and _valid(field, new, stage):
            updates[field] = new
    updates.update(_red_flag_updates(current, entities, intent, text or "", requested, updates))
    updates.update(_worked_out(current, found, updates, intent, text or "", requested))
    replaced = [field for field in FIELDS if _replaced(current.get(field), updates, field)]
    if replaced or current.get(CHANGED):
        updates[CHANGED] = replaced or None
    if "stage" in updates and "weeks" not in updates:
        weeks = current.get("weeks")
        # Weeks pregnant mean nothing after birth, and back; weeks heard before the
        # stage are kept only if they fit it ("31 weeks" ... "pregnant").
        if current.get("stage") or (
            weeks is not None and not _valid("weeks", weeks, updates["stage"])
        ):
            updates["weeks"] = None
    return updates


def _worked_out(
    current: Mapping[str, Any],
    found: Mapping[str, Any],
    updates: Mapping[str, Any],
    intent: str,
    text: str,
    requested: str | None,
) -> Dict[str, Any]:
    """What can be worked out from what she said, and her answer to "are you pregnant?".

    - Weeks with no birth mentioned are weeks pregnant ("34 wks"): the stage is taken
      as pregnant and asked to confirm, once.
    - "Since the birth" (or "from the day my son arrived") with the time since the birth
      known is how long the pain has lasted; "since she was 3 weeks old", "since the
      12-week scan" with the weeks after the birth or pregnant known, likewise.
    """
    out: Dict[str, Any] = {}
    merged = {**current, **updates}
    inferred = list(current.get(INFERRED) or [])
    onset = found.get(f"_{ONSET}", current.get(ONSET))
    if found.get(f"_{ONSET}") is not None and current.get(ONSET) != onset:
        out[ONSET] = onset
    if _weeks_after_birth(onset) is not None and merged.get("stage") is None:
        out["stage"] = merged["stage"] = "postpartum"
        duration = found.get("_duration")
        if onset == "birth" and merged.get("weeks") is None and isinstance(duration, (int, float)):
            out["weeks"] = merged["weeks"] = int(round(duration))  # "since having her 6 weeks ago"
    if requested == "stage" and "stage" in inferred:
        answer = yes_or_no(text, intent)
        if "stage" in updates or answer is not None:
            inferred.remove("stage")
            if answer is False and "stage" not in updates:
                out["stage"] = out["weeks"] = None  # not pregnant: the weeks meant nothing
    elif (
        merged.get("weeks") is not None
        and merged.get("stage") is None
        and merged["weeks"] <= FIELDS["weeks"]["max_by_stage"]["pregnant"]
    ):
        out["stage"] = "pregnant"
        inferred.append("stage")
    stage, weeks = out.get("stage", merged.get("stage")), out.get("weeks", merged.get("weeks"))
    if merged.get("weeks_of_pain") is None and weeks is not None:
        after_birth = _weeks_after_birth(onset)
        if after_birth is not None and stage == "postpartum" and weeks >= after_birth:
            out["weeks_of_pain"] = float(weeks - after_birth)
        elif isinstance(onset, int) and stage == "pregnant" and weeks >= onset:
            out["weeks_of_pain"] = float(weeks - onset)
    if inferred != list(current.get(INFERRED) or []):
        out[INFERRED] = inferred
    return out


def _weeks_after_birth(onset: Any) -> int | None:
    """0 for "birth", N for "birth+N", else None (weeks pregnant, or not known)."""
    if onset == "birth":
        return 0
    if isinstance(onset, str) and onset.startswith("birth+") and onset[6:].isdigit():
        return int(onset[6:])
    return None


def _replaced(old: Any, updates: Mapping[str, Any], field: str) -> bool:
    """Her earlier answer was replaced (not only added to): "changed" is said then."""
    if field == "red_flags" or field not in updates or old in (None, []):
        return False
    new = updates[field]
    if isinstance(old, list):
        return not set(old) <= set(new or [])
    return new != old


def _flag_of(item: str) -> str:
    return item.split(":", 1)[0]


def _red_flag_updates(
    current: Mapping[str, Any],
    entities: Iterable[Mapping[str, Any]],
    intent: str,
    text: str,
    requested: str | None,
    updates: Mapping[str, Any],
) -> Dict[str, Any]:
    """Signs to ask about, and her answer to the sign or the choice just asked about."""
    red = list(updates.get("red_flags", current.get("red_flags")) or [])
    ruled = list(current.get(RULED_OUT) or [])
    pending = list(current.get(PENDING) or [])
    out: Dict[str, Any] = {}
    for entity in entities:
        how = TO_CONFIRM.get(str(entity.get("entity")))
        flag = entity.get("value")
        if entity.get("extractor") != EXTRACTOR or how is None or not isinstance(flag, str):
            continue
        if flag not in red and flag not in ruled and flag not in map(_flag_of, pending):
            pending.append(f"{flag}:{how}")
    asked = current.get(CONFIRM)
    if requested == CONFIRM and asked:
        answer = yes_or_no(text, intent)
        unsure = intent == NOT_SURE or bool(UNSURE.search(text.lower()))
        if answer is True or unsure or asked in red:
            red = list(dict.fromkeys([*red, asked]))
            out["red_flags"] = red
            if answer is True and current.get("stage") is None:
                if red_flag_applies(asked, None, None) is None:
                    out["stage"] = "pregnant"  # "are you pregnant, and ...?" - "yes"
        elif answer is False:
            out[RULED_OUT] = [*ruled, asked]
        if answer is not None or unsure or asked in red:
            pending = [item for item in pending if _flag_of(item) != asked]
            out[CONFIRM] = None
    if pending != list(current.get(PENDING) or []):
        out[PENDING] = pending
    if requested == CONTINUE and current.get(CONTINUE) is None:
        lowered = text.lower()
        if CARRY_ON.search(lowered):
            out[CONTINUE] = True
        elif STOP_HERE.search(lowered):
            out[CONTINUE] = False
    return out


def resolve_red_flags(slots: Mapping[str, Any]) -> Dict[str, Any]:
    """Reads the signs to ask about against her stage; what is due now, what to ask next.

    A sign that cannot apply at her stage is ruled out (a pregnancy sign after the
    birth); a clear pregnancy sign, once she is known to be pregnant, is a red flag;
    the others wait to be asked. Returns the slot updates, `due` (red flags whose
    urgent advice she has not had yet) and `ask` (the next sign to ask about, or None).
    """
    stage, weeks = slots.get("stage"), slots.get("weeks")
    red = list(slots.get("red_flags") or [])
    ruled = list(slots.get(RULED_OUT) or [])
    keep = []
    for item in slots.get(PENDING) or []:
        flag, _, how = item.partition(":")
        if flag in red or flag in ruled:
            continue
        applies = red_flag_applies(flag, stage, weeks)
        if applies is False:
            ruled.append(flag)
        elif applies is True and how == "clear":
            red.append(flag)
        else:
            keep.append(item)
    updates: Dict[str, Any] = {}
    if red != list(slots.get("red_flags") or []):
        updates["red_flags"] = red
    if ruled != list(slots.get(RULED_OUT) or []):
        updates[RULED_OUT] = ruled
    if keep != list(slots.get(PENDING) or []):
        updates[PENDING] = keep
    told = set(slots.get(TOLD) or [])
    due = [flag for flag in red if flag not in told]
    # Ask about the most urgent sign first.
    keep.sort(key=lambda item: red_flag_urgency(_flag_of(item)) != "emergency")
    return {"updates": updates, "due": due, "ask": _flag_of(keep[0]) if keep else None}


def next_after_red_flags(slots: Mapping[str, Any]) -> str | None:
    """The choice to carry on or stop, once an urgent sign's advice is out; else None."""
    urgent = [f for f in slots.get("red_flags") or [] if red_flag_urgency(f) == "urgent"]
    if urgent and slots.get(CONTINUE) is None:
        return CONTINUE
    return None


def questions_to_ask(slots: Mapping[str, Any], skipped: Iterable[str] = ()) -> List[str]:
    """The fields still worth asking, in order: unknown, not skipped, able to matter.

    Able to matter: some answer would change the urgency, the pattern or whether to
    book a physio, given what she has said (the rulebook decides, `triage.worth_asking`).
    The safety screen is always asked.
    """
    case = case_from_slots(slots)
    try:
        worth = set(worth_asking(case))
    except CaseError:
        worth = set(QUESTION_ORDER)
    skipped = set(skipped or ())
    return [
        field
        for field in QUESTION_ORDER
        if field not in skipped
        and slots.get(field) is None
        and (field in ALWAYS_ASK or field in worth)
    ]


def _after_red_flag_question(
    requested: str, slots: Mapping[str, Any], intent: str | None, reask_count: float | None
) -> Dict[str, Any]:
    """A sign asked about is never skipped: unanswered twice, it counts as "not sure"."""
    reset = {"reask_count": 0.0, "reasked": False}
    answered = (
        slots.get(CONFIRM) is None if requested == CONFIRM else slots.get(CONTINUE) is not None
    )
    if answered:
        return reset
    if requested == CONTINUE and intent == NOT_SURE:
        return {**reset, CONTINUE: True}  # she can still stop at any question
    if intent not in ANSWER_INTENTS:
        return {"reasked": False}
    count = int(reask_count or 0) + 1
    if count < REASK_LIMIT:
        return {"reask_count": float(count), "reasked": True}
    if requested == CONTINUE:
        return {**reset, CONTINUE: True}  # she can still stop at any question
    flag = slots[CONFIRM]
    pending = [item for item in slots.get(PENDING) or [] if _flag_of(item) != flag]
    red = list(dict.fromkeys([*(slots.get("red_flags") or []), flag]))
    return {**reset, "red_flags": red, PENDING: pending, CONFIRM: None}


def after_answer(
    requested: str | None,
    slots: Mapping[str, Any],
    changed: Iterable[str],
    intent: str | None,
    reask_count: float | None,
    skipped: Iterable[str],
    said_yes_to_screen: bool = False,
) -> Dict[str, Any]:
    """Bookkeeping after her reply to a question: skip it, re-ask it, or move on.

    "not sure"/"skip" skips the question. An answer we cannot use gets one clearer
    re-ask (`reasked`); after the second, the question is skipped and the field
    stays unknown. A reply that set some other field is not counted against her.
    "Yes" to the red-flag screen is never skipped: the list of warning signs is
    shown again (the caller sends the urgent advice first).
    """
    reset = {"reask_count": 0.0, "reasked": False}
    if not requested:
        return reset
    if requested in (CONFIRM, CONTINUE):
        return _after_red_flag_question(requested, slots, intent, reask_count)
    skipped = list(skipped or [])
    if slots.get(requested) is not None:
        return reset
    if said_yes_to_screen and requested == "red_flags":
        return {"reask_count": 0.0, "reasked": True}
    if intent == NOT_SURE:
        return {**reset, "skipped": [*skipped, requested]}
    if set(changed) & set(FIELDS) or intent not in ANSWER_INTENTS:
        return {"reasked": False}
    count = int(reask_count or 0) + 1
    if count >= REASK_LIMIT:
        return {**reset, "skipped": [*skipped, requested]}
    return {"reask_count": float(count), "reasked": True}
