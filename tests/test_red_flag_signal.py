"""The second signal for warning signs (components/red_flag_signal.py): its example
files are checked loudly, it is deterministic, it finds signs on its own on the dev
part of the real-language corpus, and in the extractor it only ever adds a possible
mention (a confirming question) that the patterns' reading of the message allows."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from components import extractor, red_flag_reading, red_flag_signal
from components.red_flag_signal import NONE, RedFlagSignal, load_examples
from triage.contract import RED_FLAGS

ROOT = Path(__file__).resolve().parents[1]
DEV = yaml.safe_load((ROOT / "tests" / "corpus" / "dev.yml").read_text(encoding="utf-8"))["texts"]


@pytest.fixture(scope="module")
def nlp():
    return extractor.build_nlp()


@pytest.fixture(scope="module")
def signal():
    return red_flag_signal.default()


def flags_of(entities, name):
    return {e["value"] for e in entities if e["entity"] == name}


def write(folder: Path, *rows: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "examples.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return folder


GOOD = {
    "flag": "fever",
    "text": "I'm burning up, 38.6 on the thermometer",
    "source": "https://a.b/c",
}


@pytest.mark.parametrize(
    "row,message",
    [
        ({**GOOD, "flag": "feverish"}, "unknown flag"),
        ({"flag": "fever", "text": "hot"}, "keys"),
        ({**GOOD, "extra": 1}, "keys"),
        ({**GOOD, "source": "a forum"}, "address"),
        ({**GOOD, "text": "   "}, "empty"),
    ],
)
def test_a_bad_example_fails_loudly(tmp_path, row, message):
    with pytest.raises(ValueError, match=message):
        load_examples(write(tmp_path, row))


def test_the_same_text_under_two_labels_fails_loudly(tmp_path):
    with pytest.raises(ValueError, match="also labelled"):
        load_examples(write(tmp_path, GOOD, {**GOOD, "flag": NONE}))


def test_no_examples_fails_loudly(tmp_path):
    tmp_path.joinpath("empty.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="no examples"):
        load_examples(tmp_path)


def test_every_warning_sign_is_taught_with_many_examples_from_several_pages():
    examples = load_examples()
    counts = Counter(e["flag"] for e in examples)
    sources = {flag: {e["source"] for e in examples if e["flag"] == flag} for flag in counts}
    for flag in RED_FLAGS:
        assert counts[flag] >= 35, (flag, counts[flag])
        assert len(sources[flag]) >= 5, (flag, len(sources[flag]))
    assert counts[NONE] >= 450


def test_the_examples_are_not_the_corpus():
    """The signal never learns a corpus text (the test part least of all)."""
    corpus = {
        " ".join(item["text"].split()).lower()
        for part in ("dev", "test")
        for item in yaml.safe_load((ROOT / "tests" / "corpus" / f"{part}.yml").read_text())["texts"]
    }
    assert not corpus & {e["text"].lower() for e in load_examples()}


def test_the_same_examples_give_the_same_model(signal):
    again = RedFlagSignal.fit(load_examples())
    texts = [item["text"] for item in DEV[:60]]
    assert again.best(texts) == signal.best(texts)


def test_it_saves_and_loads_as_the_model_stores_it(tmp_path, signal):
    signal.save(tmp_path)
    loaded = RedFlagSignal.load(tmp_path)
    texts = [item["text"] for item in DEV[:30]]
    assert loaded.best(texts) == signal.best(texts)
    assert RedFlagSignal.load(tmp_path / "nothing") is None


def test_on_its_own_it_finds_most_dev_warning_signs_and_few_on_clean_texts(nlp, signal):
    """Independent of the patterns: the clauses of each dev text, the signal alone."""

    def proposed(item):
        doc = extractor._apply_pipeline(nlp, extractor._prepare_doc(nlp, item["text"]))
        texts = [doc[s:e].text for s, e in red_flag_reading.clauses(doc)]
        return {flag for flag in signal.propose(texts) if flag}

    flagged = [item for item in DEV if item["red_flags"]]
    clean = [item for item in DEV if not item["red_flags"]]
    right = sum(bool(proposed(item) & set(item["red_flags"])) for item in flagged)
    wrong = sum(bool(proposed(item)) for item in clean)
    # measured at THRESHOLD 0.65 on 244 / 163 dev texts: 0.68 and 0.07
    assert right / len(flagged) >= 0.6, right
    assert wrong / len(clean) <= 0.10, wrong


# Phrases no pattern knows (checked below with the patterns alone): the signal makes
# each a possible mention, so the interview asks; it never makes one a clear sign.
UNKNOWN_TO_THE_PATTERNS = [
    ("can't really feel the toilet paper when I wipe", "saddle_numbness"),
    ("my stitches down below have come apart and it stinks", "wound_problem"),
]


@pytest.mark.parametrize("text,flag", UNKNOWN_TO_THE_PATTERNS)
def test_a_phrase_the_patterns_do_not_know_still_gets_the_question(nlp, signal, text, flag):
    assert not any(e["entity"].endswith("red_flags") for e in extractor.extract(nlp, text))
    found = extractor.extract(nlp, text, signal)
    assert flag in flags_of(found, "possible_red_flags")
    assert not flags_of(found, "red_flags")


@pytest.mark.parametrize(
    "text",
    [
        "no bleeding at all and baby is kicking loads",
        "Bleeding - none. Fever - no. Baby - moving lots",
        "it feels like I've been hit by a truck every morning",
        "my leg went dead after sitting cross-legged on the floor, fine now",
        "I sneezed and leaked a little wee",
        "my mum had a blood clot in her leg after her second",
    ],
)
def test_it_never_overrides_what_the_patterns_read(nlp, signal, text):
    found = extractor.extract(nlp, text, signal)
    assert not flags_of(found, "red_flags") | flags_of(found, "possible_red_flags"), found


def test_it_adds_nothing_when_the_patterns_found_a_sign(nlp, signal):
    text = "I'm bleeding bright red. My stitches down below have come apart and it stinks."
    found = extractor.extract(nlp, text, signal)
    assert flags_of(found, "red_flags") == {"heavy_bleeding"}
    assert not flags_of(found, "possible_red_flags")


@pytest.mark.parametrize(
    "text",
    [
        "my sister's stitches down below came apart and it stinks",
        "my mum couldn't really feel the toilet paper when she wiped",
        "can't really feel the toilet paper when I wipe, that was years ago and it went away",
    ],
)
def test_what_it_proposes_is_judged_like_any_mention(nlp, signal, text):
    """Someone else's, or long past and settled since: dropped, like the patterns' own."""
    assert any(signal.propose([text]))
    found = extractor.extract(nlp, text, signal)
    assert not flags_of(found, "possible_red_flags") | flags_of(found, "red_flags")


@pytest.mark.parametrize(
    "text",
    [
        ("pain " * 800)[:4000],
        "pain pain pain",
        "ow ow ow ow ow ow",
        "HURTS hurts Hurts!!",
        "ok yes",
    ],
    ids=["4000-chars", "three", "ow", "shouted", "short"],
)
def test_a_clause_with_too_few_different_words_is_not_judged(signal, text):
    """A word said over and over names no sign; the screen asks as usual."""
    assert signal.propose([text]) == [None]


@pytest.mark.parametrize(
    "text", ["no it doesn't", "yes I have", "no, not really", "nope it isn't", "yes it does"]
)
def test_a_bare_answer_of_small_words_is_not_judged(nlp, signal, text):
    """A short answer to the interview's question is never proposed as a sign."""
    assert not red_flag_signal.says_enough(text)
    found = extractor.extract(nlp, text, signal)
    assert not [e for e in found if "red_flags" in e["entity"]], found
