"""Whole conversations through the REST channel, against the trained model."""

import uuid
from pathlib import Path

import pytest
import yaml

from tests.support.dialogue import run_dialogue

DIALOGUES = yaml.safe_load((Path(__file__).parent / "dialogues.yml").read_text())["dialogues"]
CONTRACT_KEYS = {
    "urgency", "red_flags", "pattern", "patterns", "book_pt", "book_pt_reasons",
    "labral_tear_note", "explanation", "advice", "sources", "missing",
}  # fmt: skip


def texts(replies):
    return [m.get("text", "") for turn in replies for m in turn]


@pytest.mark.parametrize("dialogue", DIALOGUES, ids=[d["id"] for d in DIALOGUES])
def test_dialogue_reaches_expected_outcome(servers, dialogue):
    sender = f"dlg-{dialogue['id']}-{uuid.uuid4().hex[:8]}"
    slots, asked, replies = run_dialogue(
        servers, sender, dialogue["opening"], dialogue.get("answers", {})
    )
    outcome = slots["triage"]
    assert CONTRACT_KEYS <= set(outcome)
    for key, value in dialogue["expect"].items():
        assert outcome[key] == value, (key, outcome[key], asked, texts(replies))
    if not dialogue.get("allow_reask"):
        assert len(asked) == len(set(asked)), f"a question was repeated: {asked}"
    for field in dialogue.get("not_asked", []):
        assert field not in asked, f"{field} was asked although she had said it: {asked}"
    for field, value in dialogue.get("case", {}).items():
        assert slots[field] == value, (field, slots[field])
