"""Tests for the triage engine: vignettes, rulebook checks, case validation."""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from triage import FIELDS, CaseError, red_flag_urgency, rulebook, triage, validate_case
from triage.contract import OUTCOME_KEYS
from triage.engine import Engine, condition, match
from triage.loader import RulebookError, check_rulebook, load_rulebook
from triage.report import rules as rulebook_rules

ROOT = Path(__file__).resolve().parents[1]
VIGNETTES = yaml.safe_load((ROOT / "tests" / "vignettes.yml").read_text(encoding="utf-8"))[
    "vignettes"
]
EXTRA_EXPECT = {
    "book_pt_reasons_include",
    "missing_include",
    "missing_exclude",
    "fires",
    "not_fires",
}

# The triage contract's tables, copied here so a drift in the code is caught.
CONTRACT_FIELDS = [
    "stage",
    "weeks",
    "locations",
    "down_side_of_leg",
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
    "numbness_tingling",
    "below_knee",
    "red_flags",
]
CONTRACT_RED_FLAGS = {
    "chest_pain_breathless": "emergency",
    "heavy_bleeding": "emergency",
    "sepsis_signs": "emergency",
    "self_harm_thoughts": "emergency",
    "bladder_bowel_control": "emergency",
    "saddle_numbness": "emergency",
    "contractions_or_fluid": "emergency",
    "reduced_baby_movements": "emergency",
    "pre_eclampsia_signs": "emergency",
    "calf_pain_swelling": "urgent",
    "fever": "urgent",
    "fall_or_trauma": "urgent",
    "cannot_bear_weight": "urgent",
    "leg_numbness_weakness": "urgent",
    "wound_problem": "urgent",
    "severe_constant_pain": "urgent",
}
PATTERNS = {"piriformis", "it_band", "round_ligament", "pelvic_girdle_instability", "unclear"}


def strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from strings(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from strings(value)


# ----------------------------------------------------------------- vignettes


def test_vignette_file_is_well_formed():
    assert len(VIGNETTES) >= 50
    ids = [v["id"] for v in VIGNETTES]
    assert len(ids) == len(set(ids))
    for vignette in VIGNETTES:
        assert set(vignette) == {"id", "note", "case", "expect"}, vignette["id"]
        assert vignette["note"].strip()
        assert vignette["expect"], vignette["id"]
        unknown = set(vignette["expect"]) - set(OUTCOME_KEYS) - EXTRA_EXPECT
        assert not unknown, f"{vignette['id']}: unknown expect keys {unknown}"


@pytest.mark.parametrize("vignette", VIGNETTES, ids=[v["id"] for v in VIGNETTES])
def test_vignette(vignette):
    outcome = triage(vignette["case"])
    for key, want in vignette["expect"].items():
        if key == "book_pt_reasons_include":
            for text in want:
                assert any(text.lower() in r.lower() for r in outcome["book_pt_reasons"]), (
                    text,
                    outcome["book_pt_reasons"],
                )
        elif key == "missing_include":
            assert set(want) <= set(outcome["missing"]), outcome["missing"]
        elif key == "missing_exclude":
            assert not set(want) & set(outcome["missing"]), outcome["missing"]
        elif key == "fires":
            assert set(want) <= set(outcome["fired_rules"]), outcome["fired_rules"]
        elif key == "not_fires":
            assert not set(want) & set(outcome["fired_rules"]), outcome["fired_rules"]
        else:
            assert outcome[key] == want, (key, outcome[key])


def test_every_rule_fires_in_some_vignette():
    fired = set()
    for vignette in VIGNETTES:
        fired.update(triage(vignette["case"])["fired_rules"])
    keys = [key for key, _, _ in rulebook_rules(rulebook())]
    assert len(keys) >= 30
    assert [k for k in keys if k not in fired] == []


def test_every_red_flag_has_a_vignette():
    seen = set()
    for vignette in VIGNETTES:
        seen.update(vignette["case"].get("red_flags") or [])
    assert seen == set(CONTRACT_RED_FLAGS)


def test_vignettes_include_two_red_flags_at_once():
    multi = [v for v in VIGNETTES if len(v["case"].get("red_flags") or []) >= 2]
    assert multi
    outcome = triage({"red_flags": ["calf_pain_swelling", "saddle_numbness"]})
    assert outcome["urgency"] == "emergency"
    assert outcome["red_flags"] == ["saddle_numbness", "calf_pain_swelling"]


# ------------------------------------------------------------- outcome shape


@pytest.mark.parametrize("vignette", VIGNETTES, ids=[v["id"] for v in VIGNETTES])
def test_outcome_has_contract_keys_and_types(vignette):
    outcome = triage(vignette["case"])
    assert list(outcome)[: len(OUTCOME_KEYS)] == list(OUTCOME_KEYS)
    assert outcome["urgency"] in ("emergency", "urgent", "book_pt", "self_care")
    assert isinstance(outcome["red_flags"], list)
    assert set(outcome["red_flags"]) <= set(CONTRACT_RED_FLAGS)
    assert outcome["pattern"] in PATTERNS
    assert isinstance(outcome["patterns"], list) and set(outcome["patterns"]) <= PATTERNS
    assert "unclear" not in outcome["patterns"]
    assert (outcome["patterns"] == []) == (outcome["pattern"] == "unclear")
    if outcome["patterns"]:
        assert outcome["patterns"][0] == outcome["pattern"]
    assert isinstance(outcome["book_pt"], bool)
    assert all(isinstance(r, str) and r for r in outcome["book_pt_reasons"])
    assert outcome["book_pt"] == bool(outcome["book_pt_reasons"])
    if outcome["urgency"] == "book_pt":
        assert outcome["book_pt"] is True
    assert isinstance(outcome["labral_tear_note"], bool)
    assert isinstance(outcome["explanation"], str) and outcome["explanation"]
    assert outcome["advice"] and all(isinstance(a, str) and a for a in outcome["advice"])
    assert outcome["sources"] and all(isinstance(s, str) for s in outcome["sources"])
    assert isinstance(outcome["pattern_description"], str) and outcome["pattern_description"]
    assert (outcome["pattern_name"] is None) == (outcome["pattern"] == "unclear")
    assert all(field in FIELDS for field in outcome["missing"])
    assert outcome["missing"] == [f for f in FIELDS if f in outcome["missing"]]
    json.dumps(outcome)


def test_urgency_is_the_highest_that_applies():
    assert triage({"red_flags": ["fever"], "wakes_at_night": True})["urgency"] == "urgent"
    assert triage({"red_flags": ["fever", "sepsis_signs"]})["urgency"] == "emergency"
    piriformis = {"locations": ["back"], "qualities": ["sharp"], "red_flags": []}
    assert triage(piriformis)["urgency"] == "self_care"
    assert triage({**piriformis, "wakes_at_night": True})["urgency"] == "book_pt"


def test_red_flag_outcome_gives_urgent_advice_with_placeholders():
    emergency = triage({"red_flags": ["reduced_baby_movements"]})
    assert "{emergency_number}" in emergency["urgent_advice"]
    urgent = triage({"red_flags": ["fever"]})
    assert "{maternity_line}" in urgent["urgent_advice"]
    assert urgent["red_flag_lines"] and "38" in urgent["red_flag_lines"][0]
    assert triage({"red_flags": []})["urgent_advice"] is None


def test_sources_name_the_documents_and_sections():
    outcome = triage({"stage": "pregnant", "locations": ["side"], "qualities": ["burning"]})
    assert (
        "pregnancy-hip-pain.txt: Hip pain during pregnancy (Origin), "
        "'The Gist: What Is Hip Pain During Pregnancy?'"
    ) in outcome["sources"]
    assert any(s.startswith("postpartum-hip-pain.txt:") for s in outcome["sources"])
    flagged = triage({"red_flags": ["calf_pain_swelling"]})
    assert flagged["sources"][0].startswith("NHS: DVT")


def test_unclear_pattern_gets_the_unclear_explanation_and_fewer_advice_items():
    clear = triage({"locations": ["back"], "qualities": ["sharp"]})
    unclear = triage({"locations": ["pubic"]})
    assert clear["explanation"] != unclear["explanation"]
    assert "core" in clear["explanation"] and "glutes" in clear["explanation"]
    assert len(unclear["advice"]) < len(clear["advice"])


def test_missing_red_flags_unknown_versus_screened():
    assert "red_flags" in triage({"locations": ["back"]})["missing"]
    assert "red_flags" not in triage({"locations": ["back"], "red_flags": []})["missing"]


def test_texts_never_say_you_have():
    for text in strings(rulebook()):
        assert "you have" not in text.lower(), text
    for vignette in VIGNETTES:
        for text in strings(triage(vignette["case"])):
            assert "you have" not in text.lower(), text


# -------------------------------------------------------------- determinism


def test_same_case_same_outcome():
    for vignette in VIGNETTES:
        assert triage(vignette["case"]) == triage(copy.deepcopy(vignette["case"]))


def test_list_order_in_the_case_does_not_change_the_outcome():
    for vignette in VIGNETTES:
        case = vignette["case"]
        reordered = {k: (v[::-1] if isinstance(v, list) else v) for k, v in case.items()}
        assert triage(reordered) == triage(case), vignette["id"]


def test_outcome_is_the_same_across_processes():
    script = (
        "import json, yaml; from triage import triage; "
        "vs = yaml.safe_load(open('tests/vignettes.yml'))['vignettes']; "
        "print(json.dumps([triage(v['case']) for v in vs], sort_keys=True))"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(runs) == 1


# ------------------------------------------------------------------ rulebook


def test_rulebook_is_cached_and_complete():
    book = rulebook()
    assert book is rulebook()
    assert {r["id"] for r in book["red_flags"]} == set(CONTRACT_RED_FLAGS)
    assert {p["id"] for p in book["patterns"]} == PATTERNS - {"unclear"}
    assert set(book["followups"]) == {
        "why",
        "what_helps",
        "how_long",
        "running",
        "labral_tear",
        "booking",
        "surgery",
    }
    for pattern in book["patterns"]:
        assert pattern["name"].startswith("the pattern")
        assert pattern["description"] and pattern["reason"]


def test_every_rule_and_text_cites_a_declared_source():
    book = rulebook()
    declared = {s["id"] for s in book["sources"]}
    files = {s.get("file") for s in book["sources"]}
    assert {"pregnancy-hip-pain.txt", "postpartum-hip-pain.txt"} <= files
    for _, _, rule in rulebook_rules(book):
        assert rule["source"] in declared
        assert rule["section"].strip() and rule["passage"].strip()

    cited = 0

    def walk(obj):
        nonlocal cited
        if isinstance(obj, dict):
            if "source" in obj:
                cited += 1
                assert obj["source"] in declared, obj
                assert obj.get("passage"), obj
            for value in obj.values():
                walk(value)
        elif isinstance(obj, list):
            for value in obj:
                walk(value)

    walk({k: v for k, v in book.items() if k != "sources"})
    assert cited > 40


def test_red_flag_urgency_matches_the_contract():
    for flag, urgency in CONTRACT_RED_FLAGS.items():
        assert red_flag_urgency(flag) == urgency
    with pytest.raises(CaseError):
        red_flag_urgency("headache")


def test_severe_reason_states_the_threshold():
    severe = next(r for r in rulebook()["book_pt"] if r["id"] == "severe")
    assert severe["all"] == [{"fact": "severity", "op": "gte", "value": 7}]
    assert "7" in severe["reason"]


def broken(mutate):
    book = copy.deepcopy(rulebook())
    mutate(book)
    return book


def rule(book, section, rule_id):
    return next(r for r in book[section] if r["id"] == rule_id)


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (
            lambda b: rule(b, "patterns", "it_band")["all"].append(
                {"fact": "hip_side", "op": "eq", "value": "left"}
            ),
            ["patterns/it_band", "unknown fact", "hip_side"],
        ),
        (
            lambda b: rule(b, "patterns", "piriformis")["any"].append(
                {"fact": "severity", "op": "greater", "value": 3}
            ),
            ["patterns/piriformis", "unknown operator", "greater"],
        ),
        (
            lambda b: rule(b, "book_pt", "severe").update(source="wikipedia"),
            ["book_pt/severe", "undeclared source", "wikipedia"],
        ),
        (
            lambda b: rule(b, "patterns", "round_ligament")["all"].append(
                {"fact": "locations", "op": "contains", "value": "knee"}
            ),
            ["patterns/round_ligament", "unknown value", "knee"],
        ),
        (
            lambda b: rule(b, "patterns", "round_ligament")["all"].__setitem__(
                0, {"fact": "stage", "op": "eq", "value": "trimester_2"}
            ),
            ["patterns/round_ligament", "unknown value", "trimester_2"],
        ),
        (
            lambda b: rule(b, "not_covered", "pubic_pain")["all"].append(
                {"fact": "unstable", "op": "gte", "value": 1}
            ),
            ["not_covered/pubic_pain", "does not suit"],
        ),
        (
            lambda b: rule(b, "patterns", "piriformis")["all"].append(
                {"fact": "pattern", "op": "eq", "value": "it_band"}
            ),
            ["patterns/piriformis", "cannot be used"],
        ),
        (
            lambda b: rule(b, "red_flags", "fever").update(source="blog"),
            ["red_flags/fever", "undeclared source"],
        ),
        (
            lambda b: rule(b, "red_flags", "fever").update(urgency="soon"),
            ["red_flags/fever", "urgency"],
        ),
        (lambda b: b["red_flags"].pop(), ["red_flags", "missing rule", "severe_constant_pain"]),
        (lambda b: rule(b, "book_pt", "unstable").update(alll=[]), ["book_pt/unstable", "alll"]),
        (lambda b: b["followups"].pop("running"), ["followups", "running"]),
        (lambda b: b["advice"][0].update(source="tiktok"), ["advice/strengthen", "undeclared"]),
        (
            lambda b: b["labral_tear"]["also"][0].update(source="forum"),
            ["labral_tear/labral_tear", "undeclared"],
        ),
        (
            lambda b: b["explanation"]["default"].update(source="nope"),
            ["explanation/default", "undeclared"],
        ),
    ],
)
def test_broken_rulebook_fails_loudly(mutate, words):
    with pytest.raises(RulebookError) as info:
        check_rulebook(broken(mutate))
    message = str(info.value)
    for word in words:
        assert word in message, message


def test_broken_rulebook_file_fails_loudly(tmp_path):
    book = broken(
        lambda b: rule(b, "patterns", "it_band")["any"].append(
            {"fact": "colour", "op": "eq", "value": "red"}
        )
    )
    path = tmp_path / "rulebook.yml"
    path.write_text(yaml.safe_dump(book, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RulebookError, match=r"patterns/it_band.*unknown fact 'colour'"):
        load_rulebook(path)
    path.write_text("patterns: [", encoding="utf-8")
    with pytest.raises(RulebookError, match="not valid YAML"):
        load_rulebook(path)
    with pytest.raises(RulebookError, match="cannot read"):
        load_rulebook(tmp_path / "nope.yml")


def test_packaged_rulebook_loads_fresh():
    assert load_rulebook() == rulebook()


# --------------------------------------------------------------- conditions


def test_unknown_fact_is_neither_true_nor_false():
    cond = {"fact": "severity", "op": "gte", "value": 7}
    assert condition(cond, {"severity": None}) is None
    assert condition(cond, {"severity": 7}) is True
    assert condition(cond, {"severity": 6}) is False


def test_operators():
    facts = {"locations": ["back", "side"], "stage": "pregnant", "unstable": False}
    assert condition({"fact": "locations", "op": "contains", "value": "back"}, facts)
    assert condition({"fact": "locations", "op": "contains_any", "value": ["front", "side"]}, facts)
    assert not condition({"fact": "locations", "op": "contains_only", "value": ["back"]}, facts)
    assert not condition(
        {"fact": "locations", "op": "contains_only", "value": ["back"]}, {"locations": []}
    )
    assert condition({"fact": "stage", "op": "in", "value": ["pregnant"]}, facts)
    assert condition({"fact": "stage", "op": "ne", "value": "postpartum"}, facts)
    assert condition({"fact": "unstable", "op": "is_false"}, facts)
    assert not condition({"fact": "unstable", "op": "is_true"}, facts)
    assert condition({"fact": "severity", "op": "lte", "value": 3}, {"severity": 3})


def test_match_semantics():
    rule_ = {
        "all": [{"fact": "locations", "op": "contains", "value": "back"}],
        "any": [
            {"fact": "qualities", "op": "contains_any", "value": ["sharp"]},
            {"fact": "triggers", "op": "contains", "value": "sitting"},
        ],
        "none": [{"fact": "numbness_tingling", "op": "is_true"}],
    }
    assert match(rule_, {"locations": ["back"]}) == (True, 0)
    assert match(rule_, {"locations": ["back"], "qualities": ["dull"]}) == (False, 0)
    assert match(rule_, {"locations": ["back"], "qualities": ["sharp"]}) == (True, 1)
    full = {"locations": ["back"], "qualities": ["sharp"], "triggers": ["sitting"]}
    assert match(rule_, full) == (True, 2)
    assert match(rule_, {**full, "numbness_tingling": True}) == (False, 0)
    assert match(rule_, {"locations": None}) == (False, 0)


def test_engine_can_run_a_rulebook_copy():
    engine = Engine(check_rulebook(copy.deepcopy(rulebook())))
    case = validate_case({"locations": ["front"], "stage": "pregnant", "qualities": ["sharp"]})
    assert engine.triage(case)["pattern"] == "round_ligament"


# ----------------------------------------------------------- case validation


def test_fields_follow_the_contract():
    assert list(FIELDS) == CONTRACT_FIELDS
    assert set(FIELDS["red_flags"]["values"]) == set(CONTRACT_RED_FLAGS)
    assert FIELDS["severity"] == {"kind": "int", "min": 0, "max": 10}
    for spec in FIELDS.values():
        assert spec["kind"] in ("enum", "list", "bool", "int", "number")


def test_validate_normalizes():
    case = validate_case(
        {"locations": ["back", "back", "side"], "weeks": 31.0, "severity": 5, "stage": "pregnant"}
    )
    assert list(case) == CONTRACT_FIELDS
    assert case["locations"] == ["back", "side"]
    assert case["weeks"] == 31 and isinstance(case["weeks"], int)
    assert case["red_flags"] is None
    assert validate_case({"weeks_of_pain": 2.5})["weeks_of_pain"] == 2.5
    assert validate_case({"stage": "postpartum", "weeks": 1560})["weeks"] == 1560


@pytest.mark.parametrize(
    ("case", "field", "words"),
    [
        ({"severity": 11}, "severity", "integer 0..10, got 11"),
        ({"severity": -1}, "severity", "0..10"),
        ({"severity": 5.5}, "severity", "integer"),
        ({"severity": True}, "severity", "integer"),
        ({"severity": "7"}, "severity", "integer"),
        ({"weeks": -3}, "weeks", "0..3000"),
        ({"stage": "pregnant", "weeks": 46}, "weeks", "0..45"),
        ({"stage": "postpartum", "weeks": 3001}, "weeks", "0..3000"),
        ({"weeks_of_pain": -1}, "weeks_of_pain", ">= 0"),
        ({"weeks_of_pain": math.nan}, "weeks_of_pain", ">= 0"),
        ({"weeks_of_pain": False}, "weeks_of_pain", "number"),
        ({"stage": "trimester"}, "stage", "pregnant, postpartum"),
        ({"stage": 1}, "stage", "one of"),
        ({"unstable": "yes"}, "unstable", "true or false"),
        ({"unstable": 1}, "unstable", "true or false"),
        ({"locations": "back"}, "locations", "a list of"),
        ({"locations": ["back", "knee"]}, "locations", "unknown value"),
        ({"red_flags": ["headache"]}, "red_flags", "unknown value"),
        ({"qualities": [1]}, "qualities", "unknown value"),
        ({"colour": "red"}, "colour", "unknown field"),
        ({1: "x"}, "1", "unknown field"),
        (["stage"], "case", "mapping"),
        ("stage: pregnant", "case", "mapping"),
        (None, "case", "mapping"),
    ],
)
def test_invalid_cases(case, field, words):
    with pytest.raises(CaseError) as info:
        validate_case(case)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert "\n" not in message
    assert message.startswith(f"{field}: "), message
    assert words in message, message
    assert info.value.field == field


def test_triage_validates_first():
    with pytest.raises(CaseError, match="severity"):
        triage({"severity": 11})


def test_none_means_unknown():
    assert triage({"stage": None, "locations": None}) == triage({})
