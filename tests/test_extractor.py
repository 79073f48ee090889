"""Tests for the rule-based free-text extractor (components/extractor.py).

Table-driven cases live in tests/extractor_cases.yml; each row has ``text``,
``expect`` (fields that must be extracted: list fields compared as sets, numbers
within ``tol``) and ``absent`` (``field`` or ``field:value`` that must NOT be extracted).
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import pytest
import spacy
import yaml

from components.extractor import (
    BOOL_FIELDS,
    CASE_FIELDS,
    FLAG_ENTITIES,
    HELPER_ENTITIES,
    LIST_FIELDS,
    MAX_CHARS,
    ONSET_ENTITY,
    QUESTION_ENTITY,
    build_nlp,
    extract,
    load_patterns,
    pattern_files,
)

CASES_FILE = Path(__file__).with_name("extractor_cases.yml")
CASES = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def nlp():
    """One pipeline for the whole module."""
    return build_nlp()


def _collect(ents: list[dict]) -> dict[str, list]:
    """Values by entity; a clear sign that only applies in pregnancy counts as red_flags."""
    out: dict[str, list] = {}
    for e in ents:
        name = "red_flags" if e["entity"] == "pregnancy_red_flags" else e["entity"]
        out.setdefault(name, []).append(e["value"])
    return out


def _same(expected, got, tol: float) -> bool:
    if isinstance(expected, bool) or isinstance(got, bool):
        return expected is got
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        return math.isclose(float(expected), float(got), abs_tol=tol)
    return expected == got


def _case_id(row: dict) -> str:
    return row["text"][:60]


def test_case_table_is_big_and_covers_the_contract():
    """The table has >= 120 rows and touches every field and every red flag."""
    assert len(CASES) >= 120
    fields_seen, flags_seen = set(), set()
    for row in CASES:
        for field, value in (row.get("expect") or {}).items():
            fields_seen.add(field)
            if field == "red_flags":
                flags_seen.update(value)
    assert CASE_FIELDS <= fields_seen, CASE_FIELDS - fields_seen
    assert HELPER_ENTITIES <= fields_seen
    assert LIST_FIELDS["red_flags"] <= flags_seen, LIST_FIELDS["red_flags"] - flags_seen
    negated = [r for r in CASES if r.get("absent")]
    assert len(negated) >= 30


@pytest.mark.parametrize("row", CASES, ids=_case_id)
def test_case(nlp, row):
    """Each row: expected fields are extracted, absent ones are not."""
    text = row["text"]
    ents = extract(nlp, text)
    got = _collect(ents)
    tol = float(row.get("tol", 0.15))
    shown = [(e["entity"], e["value"], e["text"]) for e in ents]
    for field, expected in (row.get("expect") or {}).items():
        assert field in got, f"{field} missing from {shown}"
        if field in LIST_FIELDS or field == "possible_red_flags":
            want = set(expected if isinstance(expected, list) else [expected])
            assert want <= set(got[field]), f"{field}: want {want}, got {shown}"
        else:
            assert any(_same(expected, v, tol) for v in got[field]), (
                f"{field}: want {expected!r}, got {shown}"
            )
    for item in row.get("absent") or []:
        field, _, value = str(item).partition(":")
        if not value:
            assert field not in got, f"{field} should be absent: {shown}"
        else:
            vals = [str(v).lower() for v in got.get(field, [])]
            assert value.lower() not in vals, f"{item} should be absent: {shown}"


@pytest.mark.parametrize("row", CASES, ids=_case_id)
def test_offsets_and_types(nlp, row):
    """Offsets point at the entity text; values have the contract's types."""
    text = row["text"]
    for e in extract(nlp, text):
        assert set(e) == {"entity", "value", "start", "end", "text"}
        assert 0 <= e["start"] < e["end"] <= len(text)
        assert text[e["start"] : e["end"]] == e["text"]
        name, value = e["entity"], e["value"]
        assert name in CASE_FIELDS | HELPER_ENTITIES | set(FLAG_ENTITIES) | {
            QUESTION_ENTITY,
            ONSET_ENTITY,
        }
        if name in FLAG_ENTITIES:
            assert value in LIST_FIELDS["red_flags"]
        elif name == QUESTION_ENTITY:
            assert value.startswith("ask_")
        elif name == ONSET_ENTITY:
            assert value == "birth" or isinstance(value, int)
        elif name in BOOL_FIELDS:
            assert isinstance(value, bool)
        elif name in LIST_FIELDS or name == "stage":
            assert isinstance(value, str)
        elif name == "severity":
            assert isinstance(value, int) and 0 <= value <= 10
        elif name == "weeks":
            assert isinstance(value, int) and 0 <= value <= 3000
        else:
            assert isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def test_round_trip_to_disk_gives_same_output(nlp, tmp_path):
    """nlp.to_disk / spacy.load (without re-importing anything) extracts the same."""
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert loaded.pipe_names == nlp.pipe_names
    for row in CASES:
        assert extract(loaded, row["text"]) == extract(nlp, row["text"]), row["text"]


def test_pattern_files_and_validation(tmp_path):
    """pattern_files lists the jsonl files; bad lines are rejected with file:line."""
    files = pattern_files()
    assert files and all(p.suffix == ".jsonl" for p in files)
    assert {"red_flags.jsonl", "locations.jsonl", "negation.jsonl"} <= {p.name for p in files}
    assert len(load_patterns()) > 1000
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"label": "locations", "pattern": "bum", "id": "bottom"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        build_nlp(tmp_path)
    bad.write_text('{"label": "nonsense", "pattern": "bum", "id": "back"}\n')
    with pytest.raises(ValueError, match="unknown label"):
        build_nlp(tmp_path)
    bad.write_text("not json\n")
    with pytest.raises(ValueError, match="invalid JSON"):
        build_nlp(tmp_path)
    good = tmp_path / "good"
    good.mkdir()
    (good / "x.jsonl").write_text(
        '{"label": "locations", "pattern": "bum", "id": "back"}\n\n'
        '{"label": "_norm", "pattern": "bumm", "id": "bum"}\n'
    )
    small = build_nlp(good)
    assert [(e["entity"], e["value"]) for e in extract(small, "my bumm")] == [("locations", "back")]


ODD_INPUTS = [
    "",
    " ",
    "\x00",
    "\x00\x01\x02 bleeding \x00",
    "\ud800 lone surrogate \udfff",
    "👍🏽🤰🏻💥🔥" * 50,
    "لا أعرف، ألم في الورك",
    "אני בהריון 31 שבועות",
    "\u202ebleeding\u202c",
    "<script>alert('x')</script> my hip",
    '{{slot}} [button](/intent) {"entity": "x"}',
    "a" * 100_000,
    "bleeding " * 20_000,
    "1" * 5000,
    "9" * 400 + " weeks pregnant",
    "31+" * 300,
    "- - - / / 10/10/10/10 5/10/",
    "twenty-twenty-twenty one one one weeks weeks",
    "a couple of of of weeks a few a few",
    "\n\n\t\r",
    "I'M 31 WEEKS PREGNANT AND MY BUM HURTS!!!",
    "ＩＭ３１ｗｅｅｋｓ",
    "hip\u00adbone\u200bpain",
    "no no no no no not not n't never",
    "and and and but but",
    "0.5/10 10.5/10 -3/10 11/10",
    "since 1999999999999999999999999999999 weeks",
    "\U0010ffff\U000e0001",
]


@pytest.mark.parametrize("text", ODD_INPUTS, ids=lambda s: repr(s[:20]))
def test_never_raises_on_odd_input(nlp, text):
    """Any str gives a list of well-formed entities, fast."""
    t0 = time.process_time()  # CPU time: another process on the machine doesn't count
    ents = extract(nlp, text)
    assert time.process_time() - t0 < 1.0
    assert isinstance(ents, list)
    for e in ents:
        assert text[e["start"] : e["end"]] == e["text"]
        assert e["end"] <= MAX_CHARS


def test_never_raises_on_random_input(nlp):
    """Random unicode soup never raises."""
    rng = random.Random(1234)
    alphabet = "abc xyz 0123456789 /+-.,'’\"?!\n\t\x00é字🤰\u200f\ud83d"
    alphabet += "bleeding weeks pregnant no "
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))
        assert isinstance(extract(nlp, text), list)


@pytest.mark.parametrize("bad", [None, 42, b"bytes", ["list"], {"a": 1}])
def test_non_str_input_gives_empty_list(nlp, bad):
    """Non-str input is tolerated."""
    assert extract(nlp, bad) == []  # type: ignore[arg-type]


def test_extract_survives_a_broken_pipeline():
    """Even a pipeline without the ruler does not raise."""
    assert extract(spacy.blank("en"), "I'm bleeding") == []
    assert extract(None, "I'm bleeding") == []  # type: ignore[arg-type]


def test_a_red_flag_at_the_end_of_the_longest_message_the_channels_accept(nlp):
    from channels.text import MAX_MESSAGE_CHARS

    assert MAX_CHARS >= MAX_MESSAGE_CHARS
    padding = ("my hip hurts on the side when I walk and sit, " * 100)[: MAX_MESSAGE_CHARS - 20]
    found = extract(nlp, padding + " and I'm bleeding")
    assert {"entity": "red_flags", "value": "heavy_bleeding"}.items() <= next(
        e for e in found if e["entity"] == "red_flags"
    ).items()
