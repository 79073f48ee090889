"""The triage contract's case: fields, values, limits, question order, and validation.

The one place these are declared; the engine, the extractor, the interview and the
renderer import them.

A case is a mapping of optional fields; a missing field or ``None`` means "not
known". :func:`validate_case` checks a case strictly and returns a normalized
dict holding every field, in contract order. Errors are :class:`CaseError`,
whose message is one line naming the field and what was expected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

PATTERN_IDS = ("piriformis", "it_band", "round_ligament", "pelvic_girdle_instability")
UNCLEAR = "unclear"

RED_FLAGS = (
    "chest_pain_breathless",
    "heavy_bleeding",
    "sepsis_signs",
    "self_harm_thoughts",
    "bladder_bowel_control",
    "saddle_numbness",
    "contractions_or_fluid",
    "reduced_baby_movements",
    "pre_eclampsia_signs",
    "calf_pain_swelling",
    "fever",
    "fall_or_trauma",
    "cannot_bear_weight",
    "leg_numbness_weakness",
    "wound_problem",
    "severe_constant_pain",
)

STAGES = ("pregnant", "postpartum")
URGENCY_ORDER = ("emergency", "urgent", "book_pt", "self_care")
RED_FLAG_URGENCIES = ("emergency", "urgent")
OUTCOME_KEYS = (
    "urgency",
    "red_flags",
    "pattern",
    "patterns",
    "book_pt",
    "book_pt_reasons",
    "labral_tear_note",
    "explanation",
    "advice",
    "sources",
    "missing",
)
"""The contract's outcome keys, in contract order."""
WEEKS_MAX = {"pregnant": 45, "postpartum": 3000}
"""The upper bound of `weeks` by stage (weeks pregnant; weeks since birth)."""
SEVERITY_MAX = 10


def _enum(values: dict[str, str]) -> dict[str, Any]:
    return {"kind": "enum", "values": tuple(values), "words": dict(values)}


def _list(values: dict[str, str]) -> dict[str, Any]:
    return {"kind": "list", "values": tuple(values), "words": dict(values)}


def _bool(yes: str, no: str | None) -> dict[str, Any]:
    """A yes/no field, with how the summary says each answer (None: not shown)."""
    return {"kind": "bool", "words": {True: yes, False: no}}


FIELDS: dict[str, dict[str, Any]] = {
    "stage": _enum({"pregnant": "pregnant", "postpartum": "had your baby"}),
    "weeks": {
        "kind": "int",
        "min": 0,
        "max": max(WEEKS_MAX.values()),
        "max_by_stage": dict(WEEKS_MAX),
    },
    "locations": _list(
        {
            "front": "front of the hip / groin",
            "side": "outer hip",
            "back": "buttock",
            "deep_pelvis": "deep in the pelvis",
            "low_back": "lower back",
            "pubic": "over the pubic bone",
        }
    ),
    "down_side_of_leg": _bool("runs down the side of the leg", "stays in the hip"),
    "qualities": _list(
        {
            "sharp": "sharp",
            "stabbing": "stabbing",
            "pinpoint": "pinpoint",
            "burning": "burning",
            "dull": "dull",
            "aching": "aching",
            "tight": "tight",
        }
    ),
    "triggers": _list(
        {
            "sitting": "sitting",
            "lying_on_side": "lying on your side",
            "standing_up": "standing up",
            "sudden_movement": "sudden movements",
            "walking": "walking",
            "stairs": "stairs",
            "running": "running",
            "turning_in_bed": "turning in bed",
            "standing_on_one_leg": "standing on one leg",
            "moving": "moving",
        }
    ),
    "unstable": _bool("hips feel unstable", "hips feel stable"),
    "tight": _bool("muscles feel tight", None),
    "severity": {"kind": "int", "min": 0, "max": SEVERITY_MAX},
    "wakes_at_night": _bool("wakes you at night", "doesn't wake you at night"),
    "limits_daily_life": _bool("gets in the way of daily life", None),
    "weeks_of_pain": {"kind": "number", "min": 0, "max": None},
    "exercising": _bool("doing exercises for it", "not doing exercises yet"),
    "improving": _bool("getting better", "not getting better"),
    "returning_to_sport": _bool("planning to get back to running or similar", None),
    "labral_tear": _bool("a diagnosed labral tear", None),
    "numbness_tingling": _bool("numbness or tingling", "no numbness"),
    "below_knee": _bool("spreads below the knee", "not below the knee"),
    "red_flags": _list({flag: flag.replace("_", " ") for flag in RED_FLAGS}),
}
"""Case fields in contract order: field -> spec (kind, values, min, max, and `words`:
how the summary says each value in plain words)."""

QUESTION_ORDER = (
    "red_flags",
    "stage",
    "weeks",
    "locations",
    "down_side_of_leg",
    "numbness_tingling",
    "below_knee",
    "qualities",
    "triggers",
    "unstable",
    "tight",
    "severity",
    "wakes_at_night",
    "limits_daily_life",
    "weeks_of_pain",
    "exercising",
    "improving",
    "returning_to_sport",
    "labral_tear",
)
"""The order she is asked in: the safety screen first. domain.yml's
`forms.triage_form.required_slots` lists the same fields in this order (tested)."""


def fields_of_kind(*kinds: str) -> tuple[str, ...]:
    """The case fields of the given kinds (enum, list, bool, int, number), in order."""
    return tuple(field for field, spec in FIELDS.items() if spec["kind"] in kinds)


_MISSING = object()


def describe(value: Any, limit: int = 60) -> str:
    """Formats a value for a one-line message (JSON-like, shortened)."""
    try:
        text = json.dumps(value, ensure_ascii=True, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def _name(field: Any) -> str:
    if isinstance(field, str) and field.isprintable() and 0 < len(field) <= 40:
        return field
    return describe(field, 40)


class CaseError(ValueError):
    """A case is not valid: one field, and what was expected of it.

    Attributes:
        field: the case field (or ``case`` / a file name) the error is about.
        expected: what was expected, in words.
        got: the offending value, if any.
        problem: a short note placed before "expected" (e.g. "unknown field").
    """

    def __init__(
        self, field: Any, expected: str, got: Any = _MISSING, problem: str | None = None
    ) -> None:
        """Builds the error; str() gives one line."""
        self.field = _name(field)
        self.expected = expected
        self.got = None if got is _MISSING else got
        self.problem = problem
        message = f"{self.field}: "
        if problem:
            message += f"{problem}; "
        message += f"expected {expected}"
        if got is not _MISSING:
            message += f", got {describe(got)}"
        super().__init__(" ".join(message.split()))


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()


def _check_int(field: str, value: Any, low: int, high: int, hint: str = "") -> int:
    expected = f"an integer {low}..{high}{hint}"
    if not _is_int(value):
        raise CaseError(field, expected, value)
    number = int(value)
    if not low <= number <= high:
        raise CaseError(field, expected, value)
    return number


def _check_number(field: str, value: Any, low: float) -> int | float:
    expected = f"a number >= {low:g}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CaseError(field, expected, value)
    if isinstance(value, float) and not math.isfinite(value):
        raise CaseError(field, expected, value)
    if value < low:
        raise CaseError(field, expected, value)
    return value


def _check_list(field: str, value: Any, allowed: tuple[str, ...]) -> list[str]:
    expected = "a list of: " + ", ".join(allowed)
    if not isinstance(value, (list, tuple)):
        raise CaseError(field, expected, value)
    result: list[str] = []
    for item in value:
        if not isinstance(item, str) or item not in allowed:
            raise CaseError(field, expected, item, problem=f"unknown value {describe(item)}")
        if item not in result:
            result.append(item)
    return result


def validate_case(obj: Any) -> dict[str, Any]:
    """Checks a case and returns it normalized.

    Args:
        obj: a mapping of case fields (all optional; ``None`` means unknown).

    Returns:
        A new dict with every field of :data:`FIELDS`, in contract order;
        unknown fields are ``None``, lists are de-duplicated (order kept) and
        whole-number floats in integer fields become ints.

    Raises:
        CaseError: on a non-mapping, an unknown field or value, a wrong type
            (a bool is not a number) or a value out of range.
    """
    if not isinstance(obj, Mapping):
        kind = "a list" if isinstance(obj, (list, tuple)) else describe(obj)
        if obj is None:
            kind = "nothing"
        raise CaseError("case", "a mapping of case fields (field: value)", problem=f"got {kind}")
    for key in obj:
        if not isinstance(key, str) or key not in FIELDS:
            raise CaseError(key, "one of " + ", ".join(FIELDS), problem="unknown field")

    case: dict[str, Any] = {}
    for field, spec in FIELDS.items():
        value = obj.get(field)
        if value is None:
            case[field] = None
            continue
        kind = spec["kind"]
        if kind == "enum":
            if not isinstance(value, str) or value not in spec["values"]:
                raise CaseError(field, "one of " + ", ".join(spec["values"]), value)
            case[field] = value
        elif kind == "list":
            case[field] = _check_list(field, value, spec["values"])
        elif kind == "bool":
            if not isinstance(value, bool):
                raise CaseError(field, "true or false", value)
            case[field] = value
        elif field == "weeks":
            stage = case.get("stage")
            hint = {"pregnant": " (weeks pregnant)", "postpartum": " (weeks since birth)"}
            high = spec["max_by_stage"].get(stage, spec["max"])
            case[field] = _check_int(field, value, spec["min"], high, hint.get(stage, ""))
        elif kind == "int":
            case[field] = _check_int(field, value, spec["min"], spec["max"])
        else:
            case[field] = _check_number(field, value, spec["min"])
    return case
