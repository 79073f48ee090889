"""Checks a real-language corpus file: python tests/corpus/check_corpus.py FILE..."""

from __future__ import annotations

import sys
from collections import Counter

import yaml

LISTS = {
    "locations": {"front", "side", "back", "deep_pelvis", "low_back", "pubic"},
    "qualities": {"sharp", "stabbing", "pinpoint", "burning", "dull", "aching", "tight"},
    "triggers": {
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
    },
    "red_flags": {
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
    },
}
BOOLS = {
    "down_side_of_leg",
    "unstable",
    "tight",
    "wakes_at_night",
    "limits_daily_life",
    "exercising",
    "improving",
    "returning_to_sport",
    "labral_tear",
    "numbness_tingling",
    "below_knee",
}
NUMBERS = {"weeks": (0, 3000), "severity": (0, 10), "weeks_of_pain": (0, 3000)}
KEYS = {
    "id",
    "source",
    "kinds",
    "text",
    "fields",
    "red_flags",
    "mention",
    "alarming",
    "note",
    "tol",
}


def check(path: str) -> list[str]:
    errors: list[str] = []
    data = yaml.safe_load(open(path, encoding="utf-8"))
    items = data.get("texts") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return [f"{path}: expected a mapping with a 'texts' list"]
    ids = Counter()
    flags = Counter()
    alarming = 0
    for n, item in enumerate(items, 1):
        where = f"{path} #{n} ({item.get('id') if isinstance(item, dict) else '?'})"
        if not isinstance(item, dict):
            errors.append(f"{where}: not a mapping")
            continue
        ids[item.get("id")] += 1
        extra = set(item) - KEYS
        if extra:
            errors.append(f"{where}: unknown keys {sorted(extra)}")
        for key in ("id", "source", "text"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                errors.append(f"{where}: '{key}' must be a non-empty string")
        if not str(item.get("source", "")).startswith("http"):
            errors.append(f"{where}: 'source' must be the page address")
        rf = item.get("red_flags")
        if not isinstance(rf, list) or any(f not in LISTS["red_flags"] for f in rf):
            errors.append(f"{where}: 'red_flags' must be a list of contract red flags ([] = none)")
            rf = []
        flags.update(rf)
        if rf and item.get("mention") not in ("clear", "possible"):
            errors.append(f"{where}: a text with red flags needs mention: clear|possible")
        if not rf and "mention" in item:
            errors.append(f"{where}: 'mention' only for texts with red flags")
        if item.get("alarming"):
            alarming += 1
            if rf:
                errors.append(f"{where}: 'alarming' is for texts WITHOUT a red flag")
        fields = item.get("fields") or {}
        if not isinstance(fields, dict):
            errors.append(f"{where}: 'fields' must be a mapping")
            continue
        for field, value in fields.items():
            if field == "stage":
                if value not in ("pregnant", "postpartum"):
                    errors.append(f"{where}: stage {value!r}")
            elif field in LISTS and field != "red_flags":
                if (
                    not isinstance(value, list)
                    or not value
                    or any(v not in LISTS[field] for v in value)
                ):
                    errors.append(
                        f"{where}: {field} must be a non-empty list of {sorted(LISTS[field])}"
                    )
            elif field in BOOLS:
                if not isinstance(value, bool):
                    errors.append(f"{where}: {field} must be true/false")
            elif field in NUMBERS:
                low, high = NUMBERS[field]
                if (
                    isinstance(value, bool)
                    or not isinstance(value, (int, float))
                    or not low <= value <= high
                ):
                    errors.append(f"{where}: {field} must be a number {low}..{high}")
            else:
                errors.append(f"{where}: unknown field {field!r} (red_flags go at the top level)")
        if fields.get("stage") == "pregnant" and fields.get("weeks", 0) > 45:
            errors.append(f"{where}: weeks pregnant > 45")
    for key, count in ids.items():
        if count > 1:
            errors.append(f"{path}: duplicate id {key!r}")
    print(
        f"{path}: {len(items)} texts, {sum(1 for i in items if i.get('red_flags'))} flagged, "
        f"{alarming} alarming without; per flag: {dict(sorted(flags.items()))}"
    )
    return errors


if __name__ == "__main__":
    problems = [e for p in sys.argv[1:] for e in check(p)]
    print("\n".join(problems) or "ok")
    sys.exit(1 if problems else 0)
