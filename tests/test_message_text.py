"""What every channel hands Rasa for a message starting with "/" (channels/text.py):
a well-formed payload of the domain stays one; a payload of a domain intent with
unknown contents becomes the bare intent (still a payload: it sets nothing); anything
else is her words, every leading slash dropped, so a warning sign in it counts."""

from pathlib import Path

import pytest
from rasa.shared.core.domain import Domain

from channels.text import as_read, is_payload

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def domain():
    return Domain.load(str(ROOT / "domain.yml"))


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("/deny", "/deny"),
        ('/inform{"red_flags": []}', '/inform{"red_flags": []}'),
        ('/inform{"requested_slot": "stage", "skipped": ["red_flags"]}', "/inform"),
        ("/inform{not json}", "/inform"),
        ("/ I am bleeding heavily", "I am bleeding heavily"),
        ("// I have a fever", "I have a fever"),
        ("/ /deny", "deny"),
        ("/no_such_intent", "no_such_intent"),
        ("///", ""),
        ("my hip hurts / sometimes", "my hip hurts / sometimes"),
    ],
)
def test_what_rasa_reads(domain, text, read):
    assert as_read(text, domain) == read


def test_only_domain_entities_make_a_payload(domain):
    assert is_payload('/inform{"severity": 5}', domain.intents, domain.entities)
    assert not is_payload('/inform{"requested_slot": "x"}', domain.intents, domain.entities)
