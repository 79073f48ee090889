"""Property-based tests: case validation and the spaCy extractor never break on odd input.

Bounded (200 examples each, no deadline) so the suite stays fast.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components import extractor
from triage import FIELDS, CaseError, triage, validate_case
from triage.contract import RED_FLAGS

SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
URGENCIES = {"emergency", "urgent", "book_pt", "self_care"}

# --- values: anything JSON or Python might bring, and near-valid case values ----------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=8),
)
anything = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.one_of(st.text(max_size=10), st.integers()), children, max_size=4),
    ),
    max_leaves=12,
)


def near_valid(field: str) -> st.SearchStrategy:
    """Values that are valid for `field`, or wrong in interesting ways."""
    spec = FIELDS[field]
    kind = spec["kind"]
    if kind == "enum":
        good = st.sampled_from(spec["values"])
    elif kind == "list":
        good = st.lists(st.sampled_from(spec["values"]), max_size=4)
    elif kind == "bool":
        good = st.booleans()
    elif kind == "int":
        good = st.one_of(
            st.integers(min_value=-5, max_value=3100),
            st.floats(min_value=-5, max_value=3100).map(math.floor).map(float),
        )
    else:
        good = st.floats(min_value=0, max_value=1e6, allow_nan=False)
    return st.one_of(good, good, anything)


cases = st.fixed_dictionaries(
    {}, optional={field: near_valid(field) for field in FIELDS}
) | st.dictionaries(st.one_of(st.sampled_from(list(FIELDS)), st.text(max_size=12)), anything)


@SETTINGS
@given(anything)
def test_validate_case_on_anything_returns_a_case_or_raises_case_error(obj):
    try:
        case = validate_case(obj)
    except CaseError as error:
        assert str(error)
        return
    assert list(case) == list(FIELDS)


@SETTINGS
@given(cases)
def test_validation_and_triage_raise_only_case_error(obj):
    try:
        case = validate_case(obj)
    except CaseError:
        with pytest.raises(CaseError):
            triage(obj)
        return
    assert validate_case(case) == case  # normalised cases stay as they are
    outcome = triage(obj)
    assert outcome["urgency"] in URGENCIES
    if case["red_flags"]:
        assert outcome["urgency"] in ("emergency", "urgent"), "a red flag is never hidden"
        assert outcome["urgent_advice"]
    if not isinstance(obj, Mapping):
        pytest.fail("a non-mapping was accepted")


@SETTINGS
@given(st.lists(st.sampled_from(RED_FLAGS), min_size=1, max_size=3), cases)
def test_any_red_flag_makes_the_outcome_urgent(flags, obj):
    try:
        case = validate_case({**obj, "red_flags": flags}) if isinstance(obj, Mapping) else None
    except CaseError:
        return
    outcome = triage(case)
    assert outcome["urgency"] in ("emergency", "urgent")
    assert set(flags) <= set(outcome["red_flags"])


# --- the extractor -------------------------------------------------------------------

WORDS = [
    "hip", "pain", "pregnant", "pregant", "weeks", "wks", "months", "baby", "born", "ago",
    "side", "outside", "groin", "butt", "cheek", "back", "pubic", "bone", "burning",
    "stabbing", "sharp", "dull", "not", "no", "never", "don't", "can't", "bleeding",
    "fell", "stairs", "calf", "swollen", "fever", "numb", "leg", "knee", "night", "wake",
    "yes", "sure", "about", "a", "couple", "few", "of", "out", "10", "5/10", "31+2", "½",
    "six", "twenty-eight", "2-3", "-1", "1e9", "999999999999", "0.5", ",", ".", "!", "?",
    "…", "’", "—", "\u200f", "\u202e", "\x00", "\n", "🤰", "😭", "<script>", "';--",
]  # fmt: skip
unicode_text = st.text(
    alphabet=st.characters(exclude_categories=()) | st.sampled_from(["\ud800", "\udfff", "\x00"]),
    max_size=300,
)  # control characters, NUL and lone surrogates too
word_text = st.lists(st.sampled_from(WORDS), max_size=40).map(" ".join)
messages = st.one_of(
    unicode_text, word_text, st.builds(lambda a, b: a + b, word_text, unicode_text)
)
ENTITY_NAMES = (
    set(FIELDS)
    | {"number", "duration", extractor.QUESTION_ENTITY, extractor.ONSET_ENTITY}
    | set(extractor.FLAG_ENTITIES)
)


@pytest.fixture(scope="module")
def nlp():
    return extractor.build_nlp()


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@SETTINGS
@given(text=messages)
def test_extract_never_fails_and_offsets_match_the_text(nlp, text):
    errors = _Errors()
    log = logging.getLogger(extractor.__name__)
    log.addHandler(errors)
    try:
        found = extractor.extract(nlp, text)
    finally:
        log.removeHandler(errors)
    assert not errors.records, "extract() hit its own error handler"
    starts = []
    for entity in found:
        assert set(entity) == {"entity", "value", "start", "end", "text"}
        assert entity["entity"] in ENTITY_NAMES
        start, end = entity["start"], entity["end"]
        assert 0 <= start < end <= min(len(text), extractor.MAX_CHARS)
        assert text[start:end] == entity["text"]
        starts.append(start)
        name, value = entity["entity"], entity["value"]
        if name in extractor.FLAG_ENTITIES:
            validate_case({"red_flags": [value]})  # a red flag of the contract
        elif name == extractor.QUESTION_ENTITY:
            assert value.startswith("ask_")
        elif name == extractor.ONSET_ENTITY:
            assert value == "birth" or isinstance(value, int)
        elif name in FIELDS:
            probe = {name: [value] if FIELDS[name]["kind"] == "list" else value}
            validate_case(probe)  # every value is a valid contract value
        else:
            assert isinstance(value, (int, float)) and math.isfinite(value)
    assert starts == sorted(starts), "entities come in text order"


@SETTINGS
@given(st.one_of(st.none(), st.integers(), st.binary(), st.lists(st.text())))
def test_extract_on_non_text_returns_nothing(nlp, value):
    assert extractor.extract(nlp, value) == []
