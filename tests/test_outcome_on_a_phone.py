"""The outcome as she reads it on a phone (actions/render.py): a headline of 60 words or
fewer (the pattern in plain words, whether to book a physio and why, the booking
button), at most 150 words before she taps anything, and only what fits her stage and
her answers. Rows: the vignettes of the benchmark dialogues and a few written here."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from actions import followups, render
from triage import triage
from triage.contract import validate_case

ROOT = Path(__file__).resolve().parents[1]
HEADLINE_MAX, TOTAL_MAX = 60, 150


def words(text: str) -> int:
    return len(text.split())


def dialogue_cases() -> dict:
    """The case each benchmark dialogue ends with: its opening plus its answers' meanings."""
    data = yaml.safe_load((ROOT / "bench" / "dialogues.yml").read_text())
    cases = {}
    for dialogue in data["dialogues"]:
        case = dict(dialogue.get("opening_case") or {})
        for field, (_, meaning) in (dialogue.get("answers") or {}).items():
            if isinstance(meaning, dict):
                case.update(meaning)
            elif meaning is not None:
                case[field] = meaning
        cases[f"bench-{dialogue['id']}"] = case
    return cases


CASES = {
    "it-band-pregnant": {
        "stage": "pregnant", "weeks": 29, "locations": ["side"], "qualities": ["burning"],
        "triggers": ["lying_on_side"], "down_side_of_leg": True, "numbness_tingling": False,
        "below_knee": False, "severity": 5, "wakes_at_night": True, "weeks_of_pain": 4.34,
        "labral_tear": False, "red_flags": [],
    },
    "round-ligament": {
        "stage": "pregnant", "weeks": 22, "locations": ["front"], "qualities": ["sharp"],
        "triggers": ["standing_up"], "severity": 3, "weeks_of_pain": 1, "red_flags": [],
    },
    "it-band-postpartum-runner-labral": {
        "stage": "postpartum", "weeks": 20, "locations": ["side"], "qualities": ["burning"],
        "triggers": ["running"], "severity": 4, "weeks_of_pain": 6, "labral_tear": True,
        "red_flags": [],
    },
    "piriformis-postpartum": {
        "stage": "postpartum", "weeks": 12, "locations": ["back"], "qualities": ["stabbing"],
        "triggers": ["sitting"], "severity": 6, "weeks_of_pain": 8, "wakes_at_night": False,
        "red_flags": [],
    },
    "pelvic-girdle": {
        "stage": "postpartum", "weeks": 30, "locations": ["deep_pelvis", "low_back"],
        "unstable": True, "tight": True, "severity": 5, "weeks_of_pain": 20, "red_flags": [],
    },
    "unclear": {"stage": "pregnant", "weeks": 18, "locations": ["pubic"], "red_flags": []},
}  # fmt: skip
CASES.update(dialogue_cases())


def outcome_of(case):
    case = validate_case(dict(case))
    return case, triage(case)


@pytest.mark.parametrize("name", sorted(CASES))
def test_headline_first_short_and_with_the_booking_button(name):
    case, outcome = outcome_of(CASES[name])
    messages = render.outcome_messages(case, outcome)
    if outcome["red_flags"]:  # the urgent advice first and alone, then the headline
        assert messages[0]["text"] == render.urgent_message(outcome)
        assert not messages[0].get("buttons")
        assert words(messages[0]["text"]) <= HEADLINE_MAX, messages[0]["text"]
        messages = messages[1 + bool(outcome.get("red_flag_lines")) :]
    first = messages[0]
    assert words(first["text"]) <= HEADLINE_MAX, (words(first["text"]), first["text"])
    assert "physio" in first["text"].lower()
    assert first["buttons"] == [render.BOOK_BUTTON]
    if outcome["pattern"] != "unclear":
        assert "often described as" in first["text"]
    total = sum(words(m["text"]) for m in messages)  # after any urgent advice
    assert total <= TOTAL_MAX, (total, [m["text"] for m in messages])


@pytest.mark.parametrize("name", sorted(CASES))
def test_details_come_on_a_tap(name):
    case, outcome = outcome_of(CASES[name])
    last = render.outcome_messages(case, outcome)[-1]
    titles = [b["title"] for b in last["buttons"]]
    assert titles[:3] == ["Book a visit", "Why does this happen?", "What helps?"]
    assert titles[-2:] == ["Change something", "Start again"]
    assert ("About labral tears" in titles) == bool(case.get("labral_tear"))
    assert "not a diagnosis" in last["text"] and "Based on:" in last["text"]
    everything = " ".join(m["text"] for m in render.outcome_messages(case, outcome))
    assert "What generally helps" not in everything and outcome["explanation"] not in everything


def test_each_pattern_has_its_own_explanation_fitted_to_her_stage():
    explanations = {name: outcome_of(case)[1]["explanation"] for name, case in CASES.items()}
    assert "ligament is stretched" in explanations["round-ligament"]
    assert "bump grows" in explanations["it-band-pregnant"]  # the pregnancy guide's cause
    assert "Pregnancy weakens your core" in explanations["it-band-postpartum-runner-labral"]
    assert len(set(explanations.values())) >= 4


def test_advice_fits_her_stage_and_her_answers():
    _, pregnant = outcome_of(CASES["it-band-pregnant"])
    _, runner = outcome_of(CASES["it-band-postpartum-runner-labral"])
    _, mother = outcome_of(CASES["piriformis-postpartum"])
    assert not any("kids" in line for line in pregnant["advice"])
    assert any("kids" in line for line in mother["advice"])
    assert not any("running" in line.lower() for line in pregnant["advice"] + mother["advice"])
    assert any("running" in line.lower() for line in runner["advice"])
    assert "later in pregnancy" in pregnant["pattern_description"]
    assert "later in pregnancy" not in runner["pattern_description"]


def test_the_follow_ups_answer_about_her_own_outcome():
    _, outcome = outcome_of(CASES["round-ligament"])
    why = followups.answer("ask_why", outcome)
    assert outcome["explanation"] in why and "round ligament" in why
    helps = followups.answer("ask_what_helps", outcome)
    assert helps == " ".join(outcome["advice"])
    assert followups.answer("ask_why") == followups.answer("ask_why", None)  # before one


@pytest.mark.parametrize(
    ("weeks", "said"),
    [(0.5, "under a week"), (1, "1 week"), (2, "2 weeks"), (4.34, "about 4 weeks"),
     (6, "6 weeks"), (13, "about 3 months"), (156, "about 3 years")],
)  # fmt: skip
def test_durations_read_as_people_say_them(weeks, said):
    assert render.summary({"weeks_of_pain": weeks}) == f"Here's what you told me: for {said}."


def test_the_summary_holds_only_what_she_said():
    text = render.summary({"stage": "postpartum", "tight": True})
    assert text == "Here's what you told me: had your baby; muscles feel tight."


def test_every_button_payload_fits_telegrams_64_bytes():
    """Telegram refuses callback data over 64 bytes: every button the bot can send."""
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    buttons = [
        button
        for variants in domain["responses"].values()
        for variant in variants
        for button in variant.get("buttons") or []
    ]
    buttons += [value for name, value in vars(render).items() if name.endswith("_BUTTON")]
    buttons += render.YES_NO_UNSURE
    for stage in ("pregnant", "postpartum", None):
        buttons += render.screen_question(stage, reasked=True)["buttons"]
    for case in CASES.values():
        case, outcome = outcome_of(case)
        buttons += [
            b for m in render.outcome_messages(case, outcome) for b in m.get("buttons") or []
        ]
    assert len(buttons) > 20
    too_long = [b["payload"] for b in buttons if len(b["payload"].encode()) >= 64]
    assert not too_long, too_long
