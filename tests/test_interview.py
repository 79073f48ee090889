"""The interview logic: what a message adds to the case, and what is asked next."""

import pytest

from actions import interview
from actions.interview import after_answer, questions_to_ask, updates_from_message


def ent(entity, value):
    return {"entity": entity, "value": value, "extractor": interview.EXTRACTOR}


UPDATE_CASES = [
    # (id, current slots, entities, intent, text, requested, expected updates)
    ("opening fills several fields", {},
     [ent("stage", "pregnant"), ent("weeks", 31), ent("locations", "side"),
      ent("qualities", "burning"), ent("triggers", "lying_on_side")],
     "describe_pain", "im 31 weeks pregant and the outside of my hip burns", None,
     {"stage": "pregnant", "weeks": 31, "locations": ["side"], "qualities": ["burning"],
      "triggers": ["lying_on_side"]}),
    ("weeks heard before the stage are dropped if they cannot fit it", {"weeks": 50},
     [ent("stage", "pregnant")], "inform", "I'm pregnant", None,
     {"stage": "pregnant", "weeks": None}),
    ("weeks heard before the stage are kept if they fit it", {"weeks": 31},
     [ent("stage", "pregnant")], "inform", "I'm pregnant", None, {"stage": "pregnant"}),
    ("two severities: the worst counts", {}, [ent("severity", 7), ent("severity", 3)],
     "inform", "7/10 walking, 3 at rest", "severity", {"severity": 7}),
    ("yes answers the requested bool", {}, [], "affirm", "yes", "down_side_of_leg",
     {"down_side_of_leg": True}),
    ("first word no answers a bool", {}, [], "inform", "no it doesn't", "wakes_at_night",
     {"wakes_at_night": False}),
    ("not sure sets nothing", {}, [], "not_sure", "not sure", "unstable", {}),
    ("none of these screens red flags", {}, [], "deny", "none of these", "red_flags",
     {"red_flags": []}),
    ("no never clears a reported red flag", {"red_flags": ["fever"]}, [], "deny", "no",
     "red_flags", {}),
    ("new red flag is added to the list", {"red_flags": ["fever"]},
     [ent("red_flags", "heavy_bleeding")], "red_flag_emergency", "and I'm bleeding", None,
     {"red_flags": ["fever", "heavy_bleeding"]}),
    ("tight answers what it feels like", {}, [ent("tight", True)], "inform", "tight",
     "qualities", {"tight": True, "qualities": ["tight"]}),
    ("bare number answers severity", {}, [ent("number", 6)], "inform", "6", "severity",
     {"severity": 6}),
    ("out of range severity is dropped", {}, [ent("number", 60)], "inform", "60", "severity", {}),
    ("bare duration answers weeks_of_pain", {}, [ent("duration", 2)], "inform", "2 weeks",
     "weeks_of_pain", {"weeks_of_pain": 2.0}),
    ("bare number answers weeks", {"stage": "pregnant"}, [ent("number", 20)], "inform", "20",
     "weeks", {"weeks": 20}),
    ("weeks over 45 in pregnancy are refused", {"stage": "pregnant"}, [ent("number", 60)],
     "inform", "60", "weeks", {}),
    ("a list answer adds to what she said", {"locations": ["side"]},
     [ent("locations", "back")], "inform", "and my bum", None, {"locations": ["side", "back"]}),
    ("a correction replaces the list", {"locations": ["front"]},
     [ent("locations", "side")], "correct", "actually it's more on the side", None,
     {"locations": ["side"], "changed_fields": ["locations"]}),
    ("changing stage forgets weeks", {"stage": "pregnant", "weeks": 31},
     [ent("stage", "postpartum")], "correct", "I had my baby already", None,
     {"stage": "postpartum", "weeks": None, "changed_fields": ["stage"]}),
    ("typed payload sets nothing", {},
     [{"entity": "red_flags", "value": [], "extractor": "RegexMessageHandler"}],
     "inform", '/inform{"red_flags": []}', "red_flags", {}),
    ("entities of other extractors are ignored", {},
     [{"entity": "locations", "value": "side", "extractor": "DIETClassifier"}],
     "inform", "side", None, {}),
]  # fmt: skip


@pytest.mark.parametrize(
    "current,entities,intent,text,requested,expected",
    [case[1:] for case in UPDATE_CASES],
    ids=[case[0] for case in UPDATE_CASES],
)
def test_updates_from_message(current, entities, intent, text, requested, expected):
    assert updates_from_message(current, entities, intent, text, requested) == expected


AFTER_CASES = [
    # (id, requested, slots, changed, intent, reask_count, expected)
    ("answered: reset", "severity", {"severity": 5}, ["severity"], "inform", 1,
     {"reask_count": 0.0, "reasked": False}),
    ("not sure: skipped", "unstable", {}, [], "not_sure", 0,
     {"reask_count": 0.0, "reasked": False, "skipped": ["unstable"]}),
    ("first unusable answer: clearer re-ask", "locations", {}, [], "inform", 0,
     {"reask_count": 1.0, "reasked": True}),
    ("second unusable answer: move on", "locations", {}, [], "inform", 1,
     {"reask_count": 0.0, "reasked": False, "skipped": ["locations"]}),
    ("other field answered: not counted", "severity", {"wakes_at_night": True},
     ["wakes_at_night"], "inform", 0, {"reasked": False}),
    ("typed payload: never counted, never skipped", "red_flags", {}, [], "typed_payload", 1,
     {"reasked": False}),
]  # fmt: skip


@pytest.mark.parametrize(
    "requested,slots,changed,intent,count,expected",
    [case[1:] for case in AFTER_CASES],
    ids=[case[0] for case in AFTER_CASES],
)
def test_after_answer(requested, slots, changed, intent, count, expected):
    assert after_answer(requested, slots, changed, intent, count, []) == expected


@pytest.mark.parametrize("count", [0, 1, 5])
def test_yes_to_the_safety_screen_is_never_skipped(count):
    expected = {"reask_count": 0.0, "reasked": True}
    assert after_answer("red_flags", {}, [], "affirm", count, [], said_yes_to_screen=True) == (
        expected
    )


@pytest.mark.parametrize(
    "requested,text,intent,expected",
    [
        ("red_flags", "yes", "affirm", True),
        ("red_flags", "Yes, one of these", "affirm", True),
        ("red_flags", "none of these", "deny", False),
        ("red_flags", "don't know", "deny", False),
        ("red_flags", "/affirm", "affirm", False),
        ("unstable", "yes", "affirm", False),
    ],
)
def test_screen_yes(requested, text, intent, expected):
    assert interview.screen_yes(requested, text, intent, 0.99) is expected


def test_red_flag_screen_comes_first():
    assert questions_to_ask({})[0] == "red_flags"


def test_known_and_skipped_fields_are_not_asked():
    slots = {"red_flags": [], "stage": "pregnant", "weeks": 31, "locations": ["side"]}
    asked = questions_to_ask(slots, skipped=["severity"])
    assert not {"red_flags", "stage", "weeks", "locations", "severity"} & set(asked)


def test_improving_only_asked_when_exercising():
    base = {"red_flags": [], "stage": "postpartum", "weeks": 20, "locations": ["back"],
            "weeks_of_pain": 6}  # fmt: skip
    assert "improving" not in questions_to_ask({**base, "exercising": False})
    assert "improving" in questions_to_ask({**base, "exercising": True})


def test_question_order_matches_the_form():
    import yaml

    domain = yaml.safe_load(open("domain.yml"))
    assert domain["forms"]["triage_form"]["required_slots"] == list(interview.QUESTION_ORDER)
    assert set(interview.QUESTION_ORDER) == set(interview.FIELDS)


def test_a_case_is_built_even_from_slots_the_contract_would_refuse():
    slots = {"stage": "pregnant", "weeks": 50.0, "severity": 5.0, "red_flags": []}
    assert interview.valid_case_from_slots(slots) == {
        "stage": "pregnant", "severity": 5, "red_flags": []
    }  # fmt: skip


def test_case_from_slots_is_a_valid_case():
    slots = {"weeks": 31.0, "severity": 5.0, "locations": [], "red_flags": [], "stage": "pregnant"}
    assert interview.case_from_slots(slots) == {
        "weeks": 31, "severity": 5, "red_flags": [], "stage": "pregnant"
    }  # fmt: skip


@pytest.mark.parametrize(
    "text,intent,expected",
    [
        ("yes", "affirm", True),
        ("yeah it does", "affirm", True),
        ("yes down to my knee", "inform", True),
        ("no", "deny", False),
        ("not really", "deny", False),
        ("I don't think so", "deny", False),
        ("purple", "affirm", None),
        ("<img src=x onerror=alert(1)>", "affirm", None),
        ("not sure", "not_sure", None),
        # Unsure is not no: on the safety screen "no" would mean "none of these".
        ("don't know", "deny", None),
        ("I dont know tbh", "inform", None),
        ("no idea", "deny", None),
        ("no clue what that means", "deny", None),
        ("maybe", "affirm", None),
        ("I don’t understand the question", "deny", None),
        # Words that only say yes with context never do as a first word.
        ("right side", "inform", None),
        ("does it matter?", "inform", None),
        ("is that bad", "inform", None),
        ("it does", "affirm", True),
    ],
)
def test_yes_or_no_needs_her_words(text, intent, expected):
    assert interview.yes_or_no(text, intent, 0.99) is expected
