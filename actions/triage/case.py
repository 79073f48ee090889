"""The triage case: field schema (from the triage contract) and validation.

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

WEEKS_MAX = {"pregnant": 45, "postpartum": 3000}


def _enum(*values: str) -> dict[str, Any]:
    return {"kind": "enum", "values": values}


def _list(*values: str) -> dict[str, Any]:
    return {"kind": "list", "values": values}


_BOOL: dict[str, Any] = {"kind": "bool"}

FIELDS: dict[str, dict[str, Any]] = {
    "stage": _enum("pregnant", "postpartum"),
    "weeks": {"kind": "int", "min": 0, "max": 3000, "max_by_stage": dict(WEEKS_MAX)},
    "locations": _list("front", "side", "back", "deep_pelvis", "low_back", "pubic"),
    "down_side_of_leg": dict(_BOOL),
    "qualities": _list("sharp", "stabbing", "pinpoint", "burning", "dull", "aching", "tight"),
    "triggers": _list(
        "sitting",
        "lying_on_side",
        "standing_up",
        "sudden_movement",
        "walking",
        "stairs",
        "running",
        "turning_in_bed",
        "standing_on_one_leg",
        "moving",
    ),
    "unstable": dict(_BOOL),
    "tight": dict(_BOOL),
    "severity": {"kind": "int", "min": 0, "max": 10},
    "wakes_at_night": dict(_BOOL),
    "limits_daily_life": dict(_BOOL),
    "weeks_of_pain": {"kind": "number", "min": 0, "max": None},
    "exercising": dict(_BOOL),
    "improving": dict(_BOOL),
    "returning_to_sport": dict(_BOOL),
    "labral_tear": dict(_BOOL),
    "numbness_tingling": dict(_BOOL),
    "below_knee": dict(_BOOL),
    "red_flags": _list(*RED_FLAGS),
}
"""Case fields in contract order: field -> spec (kind, values, min, max)."""

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
        elif kind == "int" and field == "weeks":
            stage = case.get("stage")
            hint = {"pregnant": " (weeks pregnant)", "postpartum": " (weeks since birth)"}
            high = spec["max_by_stage"].get(stage, spec["max"])
            case[field] = _check_int(field, value, spec["min"], high, hint.get(stage, ""))
        elif kind == "int":
            case[field] = _check_int(field, value, spec["min"], spec["max"])
        else:
            case[field] = _check_number(field, value, spec["min"])
    return case
