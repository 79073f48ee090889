"""One contract: the domain, the rulebook's texts and the extractor agree with
triage/contract.py, and each fact is written in one place only."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from actions import render
from components import extractor
from triage import clinic, rulebook
from triage.contract import FIELDS, QUESTION_ORDER

ROOT = Path(__file__).resolve().parents[1]
HELPER_ENTITIES = {
    "number", "duration", "pregnancy_red_flags", "possible_red_flags", "question_topic",
    "pain_since",
}  # fmt: skip
SLOT_TYPE = {"enum": "text", "list": "list", "bool": "bool", "int": "float", "number": "float"}


@pytest.fixture(scope="module")
def domain():
    return yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def nlp():
    return extractor.build_nlp()


def test_domain_entities_are_the_contract_fields(domain):
    assert set(domain["entities"]) == set(FIELDS) | HELPER_ENTITIES


def test_domain_slots_carry_the_contract_fields_with_matching_types(domain):
    for field, spec in FIELDS.items():
        slot = domain["slots"][field]
        assert slot["type"] == SLOT_TYPE[spec["kind"]], field
        assert slot["mappings"] == [{"type": "custom", "action": "action_extract_case"}], field
        if spec.get("max") is not None:
            assert slot["max_value"] == spec["max"], field


def test_the_form_asks_every_contract_field_in_the_contract_order(domain):
    assert domain["forms"]["triage_form"]["required_slots"] == list(QUESTION_ORDER)
    assert set(QUESTION_ORDER) == set(FIELDS)


def test_the_extractor_uses_the_contract_values():
    for field, spec in FIELDS.items():
        if spec["kind"] == "list":
            assert extractor.LIST_FIELDS[field] == frozenset(spec["values"])
        elif spec["kind"] == "enum":
            assert extractor.STR_FIELDS[field] == frozenset(spec["values"])
    assert extractor.CASE_FIELDS == frozenset(FIELDS)


@pytest.mark.parametrize("urgency", ["emergency", "urgent"])
def test_domain_urgent_advice_is_the_rulebook_text(domain, urgency):
    """The rules send it from the domain (the action server may be down): same words."""
    text = " ".join(rulebook()["urgent_advice"][urgency]["text"].split())
    with_slots, fallback = domain["responses"][f"utter_{urgency}"]
    assert with_slots["condition"] == [{"type": "slot", "name": "clinic_loaded", "value": True}]
    assert " ".join(with_slots["text"].split()) == text
    for placeholder, words in clinic.FALLBACK.items():
        text = text.replace("{" + placeholder + "}", words)
    assert " ".join(fallback["text"].split()) == text
    for placeholder in ("emergency_number", "maternity_line"):
        assert placeholder in domain["slots"], placeholder


def test_no_domain_response_repeats_the_warning_sign_list(domain):
    words = {
        sign["text"][stage]
        for sign in rulebook()["safety_screen"]["signs"]
        for stage in sign["text"]
    }
    long_words = {w for w in words if len(w) > 20}
    for name, variants in domain["responses"].items():
        for variant in variants:
            text = " ".join(variant.get("text", "").split())
            assert not any(w in text for w in long_words), name


@pytest.mark.parametrize("stage", ["pregnant", "postpartum", None])
def test_every_screen_button_is_read_as_its_warning_signs(nlp, stage):
    picker = render.screen_question(stage, reasked=True)
    assert picker["buttons"][0]["payload"] == "none of these"
    signs = {sign["button"]["payload"]: sign["flags"] for sign in render.screen_signs(stage)}
    for button in picker["buttons"][1:]:
        found = {e["value"] for e in extractor.extract(nlp, button["payload"])}
        flags = signs[button["payload"]]
        assert found & set(flags), (button, found)


def test_the_screen_fits_her_stage():
    after_birth = render.screen_question("postpartum")["text"]
    assert "baby moving less" not in after_birth and "bump" not in after_birth
    in_pregnancy = render.screen_question("pregnant")["text"]
    assert "wound" not in in_pregnancy
    for stage in ("pregnant", "postpartum", None):
        message = render.unscreened_message(stage)
        question = render.screen_question(stage)["text"].lower()
        for sign in render.screen_signs(stage):
            assert sign["words"] in message and sign["words"].lower() in question, sign["id"]
