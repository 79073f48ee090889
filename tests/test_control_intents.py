"""Intents that wipe or end the conversation stand only for the command itself.

The classifier took "the pain started again" for `restart` (0.94) and an unknown
`/inform{...}` payload read as text for `restart` too: either would have wiped her
answers. components/case_extractor.py keeps restart, stop and delete_data only when the
message says that command; else the classifier's best other intent (table below).
Every training example of those intents still counts as the command.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from components.case_extractor import COMMAND_CUES, FALLBACK_THRESHOLD, CaseEntityExtractor

ROOT = Path(__file__).resolve().parents[1]


def read(text: str, intent: str, second: str = "describe_pain", entities=()) -> str:
    message = Message({TEXT: text})
    message.set(INTENT, {"name": intent, "confidence": 0.9})
    message.set(INTENT_RANKING_KEY, [
        {"name": intent, "confidence": 0.5}, {"name": second, "confidence": 0.45},
        {"name": "not_sure", "confidence": 0.05},
    ])  # fmt: skip
    CaseEntityExtractor._set_red_flag_intent(message, list(entities))
    return message.get(INTENT)["name"]


def training_examples():
    data = yaml.safe_load((ROOT / "data/nlu/control.yml").read_text())
    for item in data["nlu"]:
        if item["intent"] in COMMAND_CUES:
            for line in item["examples"].splitlines():
                if line.strip().startswith("- "):
                    yield item["intent"], line.strip()[2:]


@pytest.mark.parametrize(("intent", "text"), list(training_examples()))
def test_every_taught_command_still_counts(intent, text):
    assert read(text, intent) == intent


@pytest.mark.parametrize(
    ("text", "intent", "expected"),
    [
        ("the pain started again", "restart", "describe_pain"),
        ("it restarted after a week off my feet", "restart", "describe_pain"),
        ("the ache starts again every night", "restart", "describe_pain"),
        ('inform{"requested_slot": "stage", "skipped": ["red_flags"]}', "restart", "describe_pain"),
        ("it stops me sleeping", "stop", "describe_pain"),
        ("i can't stop limping after the school run", "stop", "describe_pain"),
        ("the hip pain stops when I sit", "stop", "describe_pain"),
        ("I keep forgetting which side hurts more", "delete_data", "describe_pain"),
        ("Start again please", "restart", "restart"),
        ("can we begin from scratch", "restart", "restart"),
        ("stop asking me things", "stop", "stop"),
        ("please wipe what I told you", "delete_data", "delete_data"),
        ("/restart", "restart", "restart"),  # a button, read by Rasa's payload reader
    ],
)
def test_a_story_about_her_pain_is_never_a_command(text, intent, expected):
    assert read(text, intent) == expected


def test_a_guess_below_the_fallback_threshold_is_not_taken():
    assert read("inform{stage skipped}", "restart", second="not_sure") == "not_sure"
    message = Message({TEXT: "inform{stage skipped}"})
    message.set(INTENT, {"name": "restart", "confidence": 0.64})
    message.set(INTENT_RANKING_KEY, [
        {"name": "restart", "confidence": 0.64}, {"name": "not_sure", "confidence": 0.12},
    ])  # fmt: skip
    CaseEntityExtractor._set_red_flag_intent(message, [])
    assert message.get(INTENT)["name"] == "nlu_fallback"


def test_the_threshold_is_the_fallback_classifiers():
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    fallback = next(c for c in config["pipeline"] if c["name"] == "FallbackClassifier")
    assert fallback["threshold"] == FALLBACK_THRESHOLD


def test_a_command_word_next_to_her_case_is_an_answer():
    weeks = {"entity": "weeks", "value": 20, "extractor": "CaseEntityExtractor"}
    assert read("restarted at 20 weeks", "restart", entities=[weeks]) == "inform"
