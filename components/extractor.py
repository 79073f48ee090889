"""Rule-based free-text extractor for the hip pain triage assistant.

Pure spaCy (no Rasa import, no statistical model); field names, values and limits come
from the triage contract (``triage/contract.py``). Nothing is built at import time.

API::

    nlp = build_nlp(pattern_dir)          # spacy.Language, well under 1 s
    pattern_files(pattern_dir) -> [Path]  # the *.jsonl files (for fingerprinting)
    extract(nlp, text) -> [{"entity", "value", "start", "end", "text"}]

Pipeline and serialisation
--------------------------
``build_nlp`` returns ``spacy.blank("en")`` with built-in machinery only:

* the vocab's ``lexeme_norm`` lookups table, which sets ``NORM`` for spelling variants
  (``label == "_norm"`` lines: ``pregant`` -> ``pregnant``) and maps the determiners
  the/this/your/their/our to ``my``;
* one built-in ``span_ruler`` component (``RULER_NAME``) holding every pattern (phrases in
  its PhraseMatcher on ``NORM``, token patterns in its Matcher), writing overlapping
  matches to ``doc.spans[SPANS_KEY]``.

Both are saved by ``nlp.to_disk(path)`` and restored by ``spacy.load(path)`` without
importing this module. All custom logic (pre-pass, overlap resolution, negation, values)
lives in ``extract()``, which runs ``nlp.make_doc`` + the pre-pass + the pipeline itself,
so a loaded pipeline behaves exactly like a built one. Always call ``extract(nlp, text)``:
plain ``nlp(text)`` skips the pre-pass. ``nlp.meta["hip_extractor"]`` holds a fingerprint
of the pattern files.

Pre-pass (in ``extract`` and when compiling phrases)
----------------------------------------------------
* units glued to numbers are split (``6wks`` -> ``6`` ``wks``);
* an in-word hyphen is glued to the word before it, keeping that word's NORM, so
  ``butt-cheek`` matches the phrase ``butt cheek`` (phrases are written without hyphens);
* ``my``/``her``/``his`` + left/right/sore... become one token with NORM ``my``, so
  ``outside of my left hip`` matches ``outside of my hip`` (not before ``side``);
* numbers (digits, words, ``thirty-one``, ranges ``2-3`` / ``6 or 7`` -> the upper bound,
  ``5/10``, ``31+2``, ``one and a half``, and ``a``/``a couple of``/``a few``/``several``
  only before a unit) become one token with NORM ``#num``; a unit word right after a
  number gets NORM ``#unit`` (hours, days, weeks, fortnights, months x4.345, years x52.18).

Pattern files (``components/patterns/*.jsonl``)
-----------------------------------------------
One JSON object per line: ``{"label": ..., "pattern": ..., "id": ..., "note": ...}``
(``note`` is free text; blank lines are skipped; ``build_nlp`` rejects unknown labels and
values with ``file:line``). ``pattern`` is a phrase string (matched on NORM: lower case,
``can't``/``cant``/``cannot`` -> ``can not``, spelling variants fixed) or a spaCy token
pattern (``NORM``, ``LOWER``, ``REGEX``, ``IN``, ``OP``; no LEMMA/POS: there is no tagger).
``label`` is a case field, or an internal label:

* ``_neg``: negation cue. It scopes over case spans that start at most ``NEG_WINDOW``
  tokens after it, unless a scope break comes first (punctuation, a ``_break`` span such
  as "but" / "and I"); "no" directly followed by a pronoun is an answer, not a cue
  ("no it stays above the knee"). Negated booleans flip; negated list values, red flags,
  stage and severity are dropped; numbers are unaffected.
* ``_unsure``: like ``_neg`` but drops what it scopes ("not sure if it's better"),
  except red flags, which are kept (safety).
* ``_break``: negation scope breaker; only its first token counts.
* ``_ignore``: near miss ("fell asleep", "leak a bit when I sneeze", "worse when I sit");
  swallows the matches it contains and emits nothing.
* ``_norm``: spelling variant: ``pattern`` is one word, ``id`` its canonical form.

``id`` is the value: a contract value, ``"true"``/``"false"`` for booleans, a number
literal (``"8"``), or a number slot: ``"#num"`` (the ``#num`` token in the span),
``"#num*K"`` (times K), ``"#dur"`` (the number times its unit, in weeks), and for weeks
``"#left"`` (the time left to the due date: 40 weeks less the duration). Weeks are
rounded to int (within the contract's ``WEEKS_MAX``: pregnant when the span says so, else
after birth), severity must be within the contract's range
and not be followed by a unit ("a 2 week thing" is not severity 2), durations are weeks
rounded to 2 decimals.

Overlaps: spans live in three layers (numeric fields; stage; everything else), and
``_ignore`` is in all three. Within a layer a span strictly inside a longer one is
dropped (but a red flag only gives way to a red flag or an ``_ignore``); identical spans
all survive (so one phrase can set two fields: "groin pain
getting steadily worse" -> cannot_bear_weight + front + improving false); partial
overlaps both survive. So "31 weeks pregnant" gives weeks 31 AND stage pregnant, while
"lying on my side" gives lying_on_side but not location side.

Output: one entity per (field, value), in text order. A number not inside any surviving
span becomes ``number`` (or ``duration`` in weeks when a unit follows): the form decides
what a bare answer means. A scalar field may appear more than once with different values
("3/10 at rest, 7/10 walking"): all are returned in text order (severity is "worst", so
take the max; for other fields the last one is usually the correction).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import spacy
from spacy.language import Language
from spacy.tokens import Doc, Token

from components import red_flag_reading as reading
from triage.contract import FIELDS, RED_FLAGS, SEVERITY_MAX, WEEKS_MAX, fields_of_kind

logger = logging.getLogger(__name__)

DEFAULT_PATTERN_DIR = Path(__file__).resolve().parent / "patterns"
RULER_NAME = "hip_span_ruler"
SPANS_KEY = "hip_triage"
MAX_CHARS = 4000  # = channels.text.MAX_MESSAGE_CHARS: a red flag at the end is still seen
# A pregnancy told with these before it, in a message that also says after the birth,
# is history ("I had SPD from five months along ... once she arrived").
PAST_MARKERS = frozenset(
    {"had", "was", "were", "did", "used", "during", "throughout", "in", "while", "both", "previous"}
)
# A trigger in the same stretch of words (up to a comma or "and I") as these is the
# setting of that complaint, not of the hip pain ("when I sit on the loo nothing
# comes"); so is one with a word of relief.
SETTING_FLAGS = frozenset(
    {
        "bladder_bowel_control",
        "saddle_numbness",
        "leg_numbness_weakness",
        "chest_pain_breathless",
        "reduced_baby_movements",
    }
)
# A trigger is of the hip pain only in a sentence that speaks of pain ("I get out of
# puff on the stairs" is not a trigger of it).
PAIN_WORDS = frozenset(
    """pain pains painful hurt hurts hurting ache aches aching achy sore agony twinge
    twinges stab stabs stabbing pinch pinches sharp burn burns burning throb throbs
    throbbing killing kills killer worse worst unbearable tender grumbly niggle niggles
    jab jabs catches catch shooting ouch excruciating horrendous awful agonising
    agonizing uncomfortable discomfort yelp wince flare flares stabby clunks clunk grinds
    struggle struggling wakes waking woke hobble hobbling limp limping twang nightmare
    can't cant cannot couldn't""".split()
)
# "Sitting in the car does it too", "the stairs set it off": "it" is the pain.
PAIN_DOERS = frozenset({"does", "do", "did", "set", "sets", "brings", "bring", "triggers"})
PAIN_FIELDS = frozenset({"locations", "qualities", "severity"})
# Weeks only estimated ("second tri", "halfway there"): a number she gives wins.
ESTIMATE_WORDS = frozenset(
    {"trimester", "tri", "trim", "tri.", "trimest", "trimster", "trimestre", "tri's", "halfway"}
    | {"half-way", "way"}
)
# A place said only as front, back or side; the words before it tell whose or what.
BARE_PLACE_WORDS = frozenset(
    "at in on to the my round around front back side sides left right l r".split()
)
PLACE_WINDOW = 3
POSITION_VERBS = frozenset(
    "lie lying lay laying lies sleep sleeping slept roll rolled rolling turn turned".split()
)
OTHER_BODY_PARTS = frozenset(
    "head headache headaches chest tummy belly bump neck shin shins knee knees foot feet"
    " ankle ankles ribs rib eye eyes face teeth boobs boob breast breasts shoulder".split()
)
# ...and for a quality ("tight band across my chest", "calf: swollen, tight, warm").
ELSEWHERE_FOR_QUALITY = OTHER_BODY_PARTS | frozenset(
    "calf calves stomach shoulders wrist wrists hand hands arm arms throat".split()
)
QUALITY_WINDOW = 6
# "at 12 weeks I stopped running": a weeks span that opens with these is a past time
# when another weeks span says where she is now.
PAST_WEEK_WORDS = frozenset({"at", "around", "about", "from", "since", "by", "till", "until"})
RELIEF_WORDS = frozenset(
    {
        "helps",
        "helped",
        "eases",
        "eased",
        "relieves",
        "relieved",
        "comfier",
        "settles",
        "settled",
        "fades",
        "subsides",
        "disappears",
        "vanishes",
    }
)
TOILET_WORDS = frozenset({"loo", "toilet", "potty", "commode", "bog", "wc"})
POSITION_WORDS = frozenset(
    """sitting sit sat standing stand stood lying laying lie lay walking walk resting rest
    moving kneeling""".split()
)
RISE_WINDOW = 5  # tokens before a sitting trigger that may say she rises from it
LIST_GAP = 4  # tokens between two listed positions ("lying on my side, my back, sitting")
ALIKE_WORDS = frozenset(
    {"nothing", "same", "whatever", "matter", "tried", "regardless", "whether", "change"}
)
# "29 weeks" alone in its clause is how far along she is (tests/corpus dev-083, dev-278).
GESTATION_ALONE = (12, 42)
GESTATION_WORDS = frozenset({"pregnant", "today", "now", "along", "exactly", "weeks", "currently"})
NEG_WINDOW = 5  # max tokens between a negation cue and the start of what it negates
META_KEY = "hip_extractor"  # nlp.meta entry: spelling variants + pattern fingerprint

# ---------------------------------------------------------------------------
# Contract (triage/contract.py): field names, allowed values and limits
# ---------------------------------------------------------------------------
LIST_FIELDS: dict[str, frozenset[str]] = {
    name: frozenset(FIELDS[name]["values"]) for name in fields_of_kind("list")
}
STR_FIELDS: dict[str, frozenset[str]] = {
    name: frozenset(FIELDS[name]["values"]) for name in fields_of_kind("enum")
}
BOOL_FIELDS = frozenset(fields_of_kind("bool"))
NUMERIC_FIELDS = frozenset(fields_of_kind("int", "number"))
HELPER_ENTITIES = frozenset({"number", "duration"})
# Mentions of a warning sign that are not a plain statement (components/red_flag_reading.py).
FLAG_LABELS = frozenset({"red_flags", "possible_red_flags"})
FLAG_ENTITIES = ("red_flags", "pregnancy_red_flags", "possible_red_flags")  # strongest first
# A side question's topic (an ask_* intent), for the NLU component.
QUESTION_ENTITY = "question_topic"
# When the pain began: "birth", or the weeks pregnant then (an N-week scan).
ONSET_ENTITY = "pain_since"
CONSTANT_PAIN = "severe_constant_pain"
# ...or "birth+N": N weeks after the birth ("since she was about 3 weeks old": id "#pp").
ONSET_AFTER_BIRTH = "#pp"
QUESTION_WORDS = frozenset(
    {"would", "will", "can", "could", "does", "do", "is", "are", "should", "how", "what", "why",
     "am"}
)  # fmt: skip
INTERNAL_LABELS = frozenset(
    {"_neg", "_unsure", "_break", "_ignore", "_norm", "_ask"}
    | reading.CUE_LABELS
    | reading.CONCEPT_LABELS
)
CASE_FIELDS = frozenset(LIST_FIELDS) | frozenset(STR_FIELDS) | BOOL_FIELDS | NUMERIC_FIELDS

# ---------------------------------------------------------------------------
# Numbers and units
# ---------------------------------------------------------------------------
_ONES = {
    "zero": 0,
    "nil": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fourty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_VAGUE = {"couple": 2, "few": 3, "several": 3}
_UNIT_WEEKS = {
    **dict.fromkeys(["hour", "hours", "hr", "hrs", "h"], 1 / 168),
    **dict.fromkeys(["day", "days", "d", "dy", "dys", "dayz"], 1 / 7),
    **dict.fromkeys(
        ["week", "weeks", "wk", "wks", "w", "wek", "weks", "weeek", "weeeks", "wkes"], 1.0
    ),
    **dict.fromkeys(["fortnight", "fortnights"], 2.0),
    **dict.fromkeys(
        [
            "month",
            "months",
            "mo",
            "mos",
            "mth",
            "mths",
            "mnth",
            "mnths",
            "mon",
            "monts",
            "monthes",
            "mnths",
            "moth",
            "moths",
        ],
        4.345,
    ),
    **dict.fromkeys(["year", "years", "yr", "yrs", "y", "yeras", "yeats"], 52.18),
}
_GLUED_UNIT_RE = re.compile(
    r"^(\d{1,4}(?:[.,]\d{1,2})?)(wks|wk|weeks|week|w|days|day|d|mos|mo|mths|mth|months|month"
    r"|yrs|yr|years|year|y|hrs|hr|hours|hour|h|c|f)$",
    re.IGNORECASE,
)
# 27wks4d, 27w+4d: weeks and days of pregnancy written as one word
_GLUED_WEEKS_DAYS_RE = re.compile(
    r"^(\d{1,2})(wks|wk|weeks|week|w)(\+?)([0-6])(days|day|dys|dy|d)$", re.IGNORECASE
)
_GLUED_PP_RE = re.compile(
    r"^(\d{1,3})(wks|wk|w|weeks|mos|mo|mths|mth|months|m|days|d)(pp|ppd)$", re.IGNORECASE
)  # "7wpp", "4mpp": weeks or months after the birth
_DIGIT_RE = re.compile(r"^\d{1,6}(?:[.,]\d{1,3})?$")
_RANGE_RE = re.compile(r"^(\d{1,4}(?:[.,]\d)?)[-–~](\d{1,4}(?:[.,]\d)?)$")
_SCORE_RE = re.compile(r"^(\d{1,2}(?:[.,]\d)?)(?:[-–](\d{1,2}(?:[.,]\d)?))?/10$")
_ORD_RE = re.compile(r"^(\d{1,3})(?:st|nd|rd|th)$")
_RANGE_WORDS = frozenset({"to", "or", "-", "–", "~"})

# Same-length character clean-up (offsets stay valid).
_CHAR_MAP = {
    ord("\u2019"): "'",
    ord("\u2018"): "'",
    ord("\u02bc"): "'",
    ord("\u00b4"): "'",
    ord("`"): "'",
    ord("\u201c"): '"',
    ord("\u201d"): '"',
    ord("\u2013"): "-",
    ord("\u2014"): "-",
    ord("\u00a0"): " ",
    ord("\u2028"): " ",
    ord("\u2029"): " ",
}
_BAD_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufeff]")
_CANON_DETERMINERS = ("the", "this", "your", "their", "our")  # NORM -> "my"
_LATERALITY = frozenset(
    {"left", "right", "l", "r", "lhs", "rhs", "both", "sore", "bad", "painful", "affected", "other"}
)
_HYPHEN_IN_WORD_RE = re.compile(r"(?<=[^\W\d_])-(?=\w)")
_NUMBER_START_RE = re.compile(r"^\d")
_NUMBER_WORDS = frozenset(
    [
        "zero",
        "nil",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
        "thirty",
        "forty",
        "fourty",
        "fifty",
        "sixty",
        "seventy",
        "eighty",
        "ninety",
        "a",
        "an",
        "couple",
        "few",
        "several",
        "half",
    ]
)
_APPROX = frozenset(
    {
        "about",
        "around",
        "maybe",
        "like",
        "probably",
        "prob",
        "just",
        "only",
        "roughly",
        "say",
        "approx",
        "approximately",
        "perhaps",
        "guess",
        "a",
        "is",
        "'s",
        "be",
        "at",
        "to",
        "than",
    }
)
_PRONOUN_AFTER_NO = frozenset(
    {"i", "it", "its", "it's", "that", "this", "she", "he", "we", "they", "there", "im"}
)
WEEKS_LEFT = "#left"  # weeks id: the time left to the due date ("due in 4 weeks")
FULL_TERM_WEEKS = 40  # the due date: 40 weeks of pregnancy
_NUMBER_LABELS_ID_RE = re.compile(r"^#(num|dur)(\*\d+(\.\d+)?)?$")


_LAYERS = ("main", "num", "stage", "cue")
# A span is only swallowed by a longer span of at least its priority: a red flag inside
# "getting worse by the hour" (improving) survives; a near miss (_ignore) beats all.
# A plain red flag is never swallowed by a longer possible one ("can't breathe" inside
# "can't breathe properly").
_PRIORITY = {"_ignore": 3, "red_flags": 2, "possible_red_flags": 1.5}


@dataclass
class _Cand:
    """A candidate span from the ruler, with its value resolved."""

    start: int
    end: int
    label: str
    value: Any

    @property
    def length(self) -> int:
        return self.end - self.start


# ---------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------
def pattern_files(pattern_dir: str | Path | None = None) -> list[Path]:
    """List the pattern files, sorted by name.

    Args:
        pattern_dir: Folder of ``*.jsonl`` files; defaults to ``components/patterns``.

    Returns:
        The ``*.jsonl`` paths, sorted.
    """
    folder = Path(pattern_dir) if pattern_dir is not None else DEFAULT_PATTERN_DIR
    return sorted(p for p in folder.glob("*.jsonl") if p.is_file())


def load_patterns(pattern_dir: str | Path | None = None) -> list[dict[str, Any]]:
    """Read and validate every pattern line.

    Args:
        pattern_dir: Folder of ``*.jsonl`` files; defaults to ``components/patterns``.

    Returns:
        The pattern dicts (``label``, ``pattern``, ``id``), in file order.

    Raises:
        ValueError: A line is not valid JSON or names an unknown label or value.
    """
    files = pattern_files(pattern_dir)
    if not files:
        raise ValueError(f"no *.jsonl pattern files in {pattern_dir or DEFAULT_PATTERN_DIR}")
    out: list[dict[str, Any]] = []
    for path in files:
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{path.name}:{lineno}"
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: invalid JSON ({exc})") from exc
            _check_entry(entry, where)
            out.append(
                {"label": entry["label"], "pattern": entry["pattern"], "id": entry.get("id", "")}
            )
    return out


def _check_entry(entry: Any, where: str) -> None:
    """Validate one pattern line against the contract; raise ValueError if wrong."""
    if not isinstance(entry, dict) or "label" not in entry or "pattern" not in entry:
        raise ValueError(f"{where}: need an object with 'label' and 'pattern'")
    label, pid, pat = entry["label"], str(entry.get("id", "")), entry["pattern"]
    if not isinstance(pat, (str, list)) or not pat:
        raise ValueError(f"{where}: 'pattern' must be a non-empty string or token list")
    if label == "possible_red_flags" or label in reading.CONCEPT_LABELS:
        if pid not in RED_FLAGS:
            raise ValueError(f"{where}: {label} id must be a red flag, not {pid!r}")
    elif label in LIST_FIELDS or label in STR_FIELDS:
        allowed = LIST_FIELDS.get(label) or STR_FIELDS[label]
        if pid not in allowed:
            raise ValueError(f"{where}: {label} id must be one of {sorted(allowed)}, not {pid!r}")
    elif label in BOOL_FIELDS:
        if pid not in ("true", "false"):
            raise ValueError(f"{where}: {label} id must be 'true' or 'false', not {pid!r}")
    elif label in NUMERIC_FIELDS:
        if label == "weeks" and pid == WEEKS_LEFT:
            pass
        elif not _NUMBER_LABELS_ID_RE.match(pid):
            try:
                float(pid)
            except ValueError:
                raise ValueError(f"{where}: {label} id must be a number or #num/#dur") from None
    elif label == ONSET_ENTITY:
        if pid not in ("birth", "#num", ONSET_AFTER_BIRTH):
            raise ValueError(
                f"{where}: pain_since id must be 'birth', '#num' or '#pp', not {pid!r}"
            )
    elif label == "_ask":
        if not pid.startswith("ask_"):
            raise ValueError(f"{where}: _ask id must be an ask_* intent, not {pid!r}")
    elif label == "_norm":
        if not isinstance(pat, str) or " " in pat.strip() or not pid:
            raise ValueError(f"{where}: _norm needs a one-word string pattern and an id")
    elif label not in INTERNAL_LABELS:
        raise ValueError(f"{where}: unknown label {label!r}")


def build_nlp(pattern_dir: str | Path | None = None) -> Language:
    """Build the rule pipeline from the pattern files.

    Args:
        pattern_dir: Folder of ``*.jsonl`` files; defaults to ``components/patterns``.

    Returns:
        A ``spacy.blank("en")`` pipeline with a ``span_ruler``; pass it to ``extract``.
    """
    entries = load_patterns(pattern_dir)
    nlp = spacy.blank("en")
    _install_norms(nlp, [e for e in entries if e["label"] == "_norm"])
    nlp.add_pipe("sentencizer")  # IS_SENT_START in patterns: each sentence's start
    _register_extensions()
    ruler = nlp.add_pipe(
        "span_ruler",
        name=RULER_NAME,
        config={
            "spans_key": SPANS_KEY,
            "annotate_ents": False,
            "overwrite": True,
            "validate": False,
            "phrase_matcher_attr": "NORM",
        },
    )
    patterns = []
    for e in entries:
        if e["label"] == "_norm":
            continue
        pat = e["pattern"]
        if isinstance(pat, str):
            pat = _compile_phrase(nlp, pat)
        patterns.append({"label": e["label"], "pattern": pat, "id": str(e["id"])})
    ruler.add_patterns(patterns)  # type: ignore[attr-defined]
    digest = hashlib.sha1()
    for path in pattern_files(pattern_dir):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    nlp.meta[META_KEY] = {"patterns_sha1": digest.hexdigest(), "n_patterns": len(entries)}
    return nlp


def _register_extensions() -> None:
    """``{"_": {"opens_message": true}}`` in a pattern: the message's first word only."""
    if not Token.has_extension("opens_message"):
        Token.set_extension("opens_message", getter=lambda t: t.i == 0)


def _install_norms(nlp: Language, norm_entries: list[dict[str, Any]]) -> None:
    """Spelling variants and determiners -> NORM, via the vocab's ``lexeme_norm`` table.

    The table is saved by ``nlp.to_disk`` and re-installed by ``spacy.load``.
    """
    table: dict[str, str] = {}
    pairs = [(w, "my") for w in _CANON_DETERMINERS]
    pairs += [(str(e["pattern"]).strip().lower(), str(e["id"])) for e in norm_entries]
    for word, canon in pairs:
        if len(nlp.make_doc(word)) != 1:
            raise ValueError(f"_norm pattern {word!r} is not a single token")
        for variant in {word, word.capitalize(), word.title(), word.upper()}:
            table[variant] = canon
    lookups = nlp.vocab.lookups
    if lookups.has_table("lexeme_norm"):
        lookups.get_table("lexeme_norm").update(table)
    else:
        lookups.add_table("lexeme_norm", table)
    nlp.vocab.lookups = lookups  # re-installs the NORM getter
    for variant, canon in table.items():
        nlp.vocab[variant].norm_ = canon  # lexemes that already exist


def _compile_phrase(nlp: Language, phrase: str) -> str | list[dict[str, Any]]:
    """A phrase stays a phrase (PhraseMatcher on NORM) unless the pre-pass changes it.

    Hyphens between words become spaces ("period-like" == "period like"). Phrases with
    numbers or a determiner + left/right are turned into NORM token patterns.
    """
    phrase = _HYPHEN_IN_WORD_RE.sub(" ", phrase.strip())
    words = set(phrase.lower().split())
    if not (words & (_NUMBER_WORDS | _LATERALITY) or any(c.isdigit() for c in phrase)):
        return phrase  # nothing the pre-pass would change
    plain = nlp.make_doc(phrase)
    prepared = _prepare_doc(nlp, _clean(phrase))
    if [t.norm_ for t in plain] == [t.norm_ for t in prepared]:
        return phrase
    return [
        {"LOWER": t.lower_} if t.norm_ in ("#num", "#unit") else {"NORM": t.norm_} for t in prepared
    ]


# ---------------------------------------------------------------------------
# Pre-pass: hyphens, left/right, numbers and units
# ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    """NFKC-fold one character when it stays one character (full-width ３ -> 3)."""
    folded = unicodedata.normalize("NFKC", ch)
    return folded if len(folded) == 1 else ch


def _clean(text: str) -> str:
    """Same-length clean-up: curly quotes, dashes, control chars, lone surrogates, NFKC.

    Every character maps to exactly one character, so offsets stay valid.
    """
    text = _BAD_CHARS_RE.sub(" ", text.translate(_CHAR_MAP))
    if not text.isascii():
        text = "".join(_fold_char(ch) for ch in text).translate(_CHAR_MAP)
    return text


def _unit_factor(tok: Any) -> float | None:
    """Weeks per unit for a unit word token, else None."""
    low = tok.lower_.rstrip("-")
    return _UNIT_WEEKS.get(low, _UNIT_WEEKS.get(tok.norm_))


def _digits(s: str) -> float:
    if "," in s and len(s.split(",")[1]) == 3:  # thousands separator
        return float(s.replace(",", ""))
    return float(s.replace(",", "."))


def _read_single(doc: Doc, i: int) -> tuple[float, int, bool] | None:
    """Read one number at token i: (value, end, vague) or None."""
    n = len(doc)
    low = doc[i].lower_.rstrip("-") or doc[i].lower_
    if _DIGIT_RE.match(low):
        v, end = _digits(low), i + 1
        # 31+2 (weeks+days) written without spaces
        if (
            end + 1 < n
            and doc[end].text == "+"
            and not doc[i].whitespace_
            and not doc[end].whitespace_
            and doc[end + 1].text.isdigit()
            and int(doc[end + 1].text) < 7
        ):
            v, end = v + int(doc[end + 1].text) / 7, end + 2
        return v, end, False
    m = _RANGE_RE.match(low) or _SCORE_RE.match(low)
    if m:
        vals = [_digits(g) for g in m.groups() if g]
        return max(vals), i + 1, False
    m = _ORD_RE.match(low)
    if m:
        return float(m.group(1)), i + 1, False
    if low in _TENS:
        v, end = float(_TENS[low]), i + 1
        if (
            end < n
            and doc[end].text == "-"
            and end + 1 < n
            and 0 < _ONES.get(doc[end + 1].lower_, 0) < 10
        ):
            v, end = v + _ONES[doc[end + 1].lower_], end + 2
        elif end < n and 0 < _ONES.get(doc[end].lower_, 0) < 10:
            v, end = v + _ONES[doc[end].lower_], end + 1
        return v, end, False
    if low in _ONES:
        return float(_ONES[low]), i + 1, False
    if low in ("a", "an"):
        if i + 1 < n and doc[i + 1].lower_ in _VAGUE:
            return float(_VAGUE[doc[i + 1].lower_]), i + 2, True
        return 1.0, i + 1, True
    if low in _VAGUE:
        return float(_VAGUE[low]), i + 1, True
    if low == "half" and i + 1 < n and doc[i + 1].lower_ in ("a", "an"):
        return 0.5, i + 2, True
    return None


def _read_number(doc: Doc, i: int) -> tuple[float, int] | None:
    """Read a number expression at token i (ranges, 'and a half', vague words)."""
    first = _read_single(doc, i)
    if first is None:
        return None
    v, end, vague = first
    n = len(doc)
    if end < n and doc[end].lower_ == "of" and vague:  # a couple of (weeks)
        end += 1
    low = [t.lower_ for t in doc[end : end + 3]]
    if low[:3] == ["and", "a", "half"]:
        v, end = v + 0.5, end + 3
    elif low[:2] == ["and", "half"]:
        v, end = v + 0.5, end + 2
    if not vague and end + 1 < n and doc[end].lower_ in _RANGE_WORDS:
        second = _read_single(doc, end + 1)
        if second is not None and not second[2] and second[0] > v:
            v, end = second[0], second[1]
    if vague and (end >= n or _unit_factor(doc[end]) is None):
        return None
    return v, end


def _merge_words(doc: Doc) -> None:
    """Merge in-word hyphens ("butt-" "cheek") and my + left/right ("my left" hip).

    The merged token keeps the first token's NORM.
    """
    spans: list[tuple[int, int, str]] = []
    n, i = len(doc), 0
    while i < n - 1:
        tok, nxt = doc[i], doc[i + 1]
        if (
            nxt.text == "-"
            and not tok.whitespace_
            and not nxt.whitespace_
            and i + 2 < n
            and tok.is_alpha
            and doc[i + 2].text[:1].isalnum()
        ):
            spans.append((i, i + 2, tok.norm_))
            i += 2
        elif (
            tok.norm_ in ("my", "her", "his")
            and nxt.lower_ in _LATERALITY
            and (i + 2 >= n or doc[i + 2].norm_ not in ("side", "sides", "one", "-"))
        ):
            spans.append((i, i + 2, tok.norm_))
            i += 2
        else:
            i += 1
    if spans:
        with doc.retokenize() as retok:
            for s, e, norm in spans:
                retok.merge(doc[s:e], attrs={"NORM": norm})


def _prepare_doc(nlp: Language, text: str) -> Doc:
    """Tokenize, then merge hyphens / left-right and numbers; mark numbers and units."""
    doc = nlp.make_doc(text)
    glued = []
    for tok in doc:
        if tok.text[:1].isdigit():
            m = (
                _GLUED_UNIT_RE.match(tok.text)
                or _GLUED_WEEKS_DAYS_RE.match(tok.text)
                or _GLUED_PP_RE.match(tok.text)
            )
            if m:
                glued.append((tok, [g for g in m.groups() if g]))
    if glued:  # "6wks" -> "6" "wks"; "27wks4d" -> "27" "wks" "4" "d"
        with doc.retokenize() as retok:
            for tok, parts in glued:
                retok.split(tok, parts, heads=[(tok, 0)] * len(parts))
    if "-" in text or any(t.lower_ in _LATERALITY for t in doc):
        _merge_words(doc)
    found: list[tuple[int, int, float]] = []
    i = 0
    while i < len(doc):
        low = doc[i].lower_
        got = None
        if _NUMBER_START_RE.match(low) or low.rstrip("-") in _NUMBER_WORDS:
            got = _read_number(doc, i)
        if got is None:
            i += 1
            continue
        found.append((i, got[1], got[0]))
        i = got[1]
    values: dict[int, float] = {}
    if found:
        with doc.retokenize() as retok:
            for s, e, v in found:
                values[doc[s].idx] = v
                if e - s > 1:
                    retok.merge(doc[s:e])
        for tok in doc:
            if tok.idx in values:
                tok.norm_ = "#num"
                nxt = tok.i + 1
                if nxt + 1 < len(doc) and doc[nxt].text == "-" and not tok.whitespace_:
                    nxt += 1
                if nxt < len(doc) and _unit_factor(doc[nxt]) is not None:
                    doc[nxt].norm_ = "#unit"
    doc.user_data["hip_numbers"] = values
    return doc


# ---------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------
def _unit_after(doc: Doc, i: int, end: int) -> Any:
    """The #unit token right after number token i (a hyphen may sit between), or None."""
    for nxt in doc[i + 1 : min(end, i + 3)]:
        if nxt.norm_ == "#unit":
            return nxt
        if nxt.text != "-":
            return None
    return None


def _number_in(doc: Doc, start: int, end: int) -> tuple[float, float | None, bool] | None:
    """The number in doc[start:end]: (value, weeks per unit inside the span, unit follows).

    Prefers the first number that has a unit inside the span ("my little one is 4 months").
    """
    values = doc.user_data.get("hip_numbers", {})
    first = None
    for tok in doc[start:end]:
        if tok.norm_ == "#num" and tok.idx in values:
            unit = _unit_after(doc, tok.i, end)
            if unit is not None:
                return values[tok.idx], _unit_factor(unit), True
            if first is None:
                first = (values[tok.idx], None, _unit_after(doc, tok.i, len(doc)) is not None)
    return first


def _round_num(v: float, ndigits: int = 2) -> int | float:
    r = round(v, ndigits)
    return int(r) if float(r).is_integer() else r


def _span_value(doc: Doc, start: int, end: int, label: str, pid: str) -> Any:
    """Resolve a span's value from its id; None means invalid (drop the span)."""
    if label in INTERNAL_LABELS:
        return pid
    if label in BOOL_FIELDS:
        return pid == "true"
    if label == ONSET_ENTITY and pid == ONSET_AFTER_BIRTH:
        got = _number_in(doc, start, end)
        if got is None or got[1] is None:
            return None
        weeks = int(got[0] * got[1] + 0.5)
        return f"birth+{weeks}" if 0 <= weeks <= WEEKS_MAX["postpartum"] else None
    if label == ONSET_ENTITY and pid == "#num":
        got = _number_in(doc, start, end)
        weeks = int(got[0] + 0.5) if got else None
        return weeks if weeks is not None and 0 <= weeks <= WEEKS_MAX["pregnant"] else None
    if label not in NUMERIC_FIELDS:
        return pid
    m = _NUMBER_LABELS_ID_RE.match(pid)
    if pid == WEEKS_LEFT:  # "six weeks to go": weeks pregnant = full term - what is left
        got = _number_in(doc, start, end)
        if got is None or got[1] is None:
            return None
        left = got[0] * got[1]
        return int(FULL_TERM_WEEKS - left + 0.5) if 0 < left < FULL_TERM_WEEKS else None
    if m:
        got = _number_in(doc, start, end)
        if got is None:
            return None
        v, factor, unit_follows = got
        if m.group(1) == "dur":
            if factor is None:
                return None
            v *= factor
        elif label == "severity" and unit_follows:
            return None  # "a 2 week thing": the number belongs to a duration
        if m.group(2):
            v *= float(m.group(2)[1:])
    else:
        v = float(pid)
    if label == "severity":
        iv = int(v + 0.5)
        return iv if 0 <= iv <= SEVERITY_MAX else None
    if label == "weeks":
        iv = int(v + 0.5)
        pregnancy = any(
            t.norm_ in ("pregnant", "along", "gestation", "trimester") for t in doc[start:end]
        )
        return iv if 0 <= iv <= WEEKS_MAX["pregnant" if pregnancy else "postpartum"] else None
    return _round_num(v) if 0 <= v <= WEEKS_MAX["postpartum"] else None


def _layers(label: str) -> tuple[str, ...]:
    if label == "_ignore":
        return _LAYERS
    if label in reading.CUE_LABELS or label in reading.CONCEPT_LABELS:
        return ("cue",)
    if label == "_ask":
        return ("ask",)  # a near miss never hides a question's topic
    if label in NUMERIC_FIELDS:
        return ("num",)
    if label in STR_FIELDS:
        return ("stage",)
    return ("main",)


def _resolve_overlaps(cands: list[_Cand]) -> list[_Cand]:
    """Within a layer, a span inside a longer one is dropped; identical spans all survive.

    Partial overlaps both survive ("hard to get" + "get dressed"). ``_ignore`` spans
    compete in every layer. Red flags are only swallowed by red flags or ``_ignore``.
    """
    layers: dict[str, list[_Cand]] = {name: [] for name in (*_LAYERS, "ask")}
    for c in sorted(cands, key=lambda c: (-c.length, c.start)):
        for name in _layers(c.label):
            kept = layers[name]
            if not any(
                k.start <= c.start
                and c.end <= k.end
                and k.length > c.length
                and _PRIORITY.get(k.label, 1) >= _PRIORITY.get(c.label, 1)
                for k in kept
            ):
                kept.append(c)
    out = {id(c): c for name in layers for c in layers[name]}
    return sorted(out.values(), key=lambda c: (c.start, c.end))


def _is_break_token(tok: Any) -> bool:
    return tok.is_punct and tok.text not in ("'", '"', "/", "&")


def _negation_scope(doc: Doc, cue: _Cand, target: _Cand, breaks: set[int]) -> bool:
    """True when cue scopes over target (target after cue, close, same clause)."""
    if cue.end > target.start or target.start - cue.end > NEG_WINDOW:
        return False
    if (
        cue.label == "_neg"
        and cue.length == 1
        and doc[cue.start].lower_ in ("no", "nope", "nah")
        and cue.end < len(doc)
        and doc[cue.end].lower_ in _PRONOUN_AFTER_NO
    ):
        return False  # "no it stays above the knee": an answer, not a determiner
    for i in range(cue.end, target.start):
        if i in breaks or _is_break_token(doc[i]):
            return False
    return True


def _past_pregnancy(
    doc: Doc, results: list[tuple[int, int, str, Any]], breaks: set[int]
) -> list[tuple[int, int, str, Any]]:
    """Drops the pregnancy told as history when the message says she has had her baby.

    "I had SPD from about five months along right to the end ... once she arrived": the
    stage and weeks of a clause that tells the pregnancy in the past ("had", "was",
    "during") are not now. Only when the same message also says after the birth: a
    pregnancy said alone stands.
    """
    stages = {value for _, _, label, value in results if label == "stage"}
    if stages != {"pregnant", "postpartum"}:
        return results
    past = set()
    for start, end, label, value in results:
        if label == "stage" and value == "pregnant":
            s_start, s_end = _segment(doc, start, end, breaks)
            if any(t.lower_ in PAST_MARKERS for t in doc[s_start:start]):
                past.add((s_start, s_end))
    return [
        r
        for r in results
        if not (
            r[2] in ("stage", "weeks")
            and r[3] != "postpartum"
            and any(s <= r[0] < e for s, e in past)
        )
    ]


def _weeks_she_is(
    doc: Doc, results: list[tuple[int, int, str, Any]]
) -> list[tuple[int, int, str, Any]]:
    """Which of several weeks and stages is where she is now.

    "26 weeks, second tri nearly done": the weeks she gives, not an estimate's. "17
    weeks ... at 12 weeks I stopped running": "at 12 weeks" is a time in the past.
    "She's 2 weeks postpartum": postpartum, though "she's 2 weeks" alone is pregnant;
    "my baby is 6 months and it's hurt since the third trimester": the trimester is past.
    """
    estimate = {r for r in results if any(t.lower_ in ESTIMATE_WORDS for t in doc[r[0] : r[1]])}
    after_birth = [r for r in results if r[2] == "stage" and r[3] == "postpartum"]
    drop = set()
    for r in results:
        if r[2] == "stage" and r[3] == "pregnant" and after_birth:
            if r in estimate or any(p[0] < r[1] and r[0] < p[1] for p in after_birth):
                drop.add(r)
                drop.update(w for w in results if w[2] == "weeks" and w[:2] == r[:2])
    weeks = [r for r in results if r[2] == "weeks" and r not in drop]
    said = [r for r in weeks if r not in estimate]
    if said and len(weeks) > len(said):
        drop.update(set(weeks) - set(said))
    now = [r for r in said if doc[r[0]].lower_ not in PAST_WEEK_WORDS]
    if now and len(said) > len(now):
        drop.update(set(said) - set(now))
    return [r for r in results if r not in drop]


def _triggers_of_the_pain(
    doc: Doc, kept: list[_Cand], results: list[tuple[int, int, str, Any]], breaks: set[int]
) -> list[tuple[int, int, str, Any]]:
    """Drops a trigger told as the setting of another complaint, or as what relieves it.

    "When I sit on the loo nothing comes", "breathless on the stairs", "sitting on the
    ball helps": the sitting, the stairs are not what brings the hip pain on. Nor is a
    trigger in a sentence that says nothing of pain, in a message that does elsewhere;
    nor positions listed as making no difference; nor the chair she rises from (that
    is standing up). A duration or "since the birth" in a sentence about another
    complaint, and no pain, is not how long the pain has lasted. (Numbness after
    sitting is left alone: dropping those triggers cost more than it gained on the dev
    part.)
    """
    elsewhere = [c for c in kept if c.label in FLAG_LABELS and c.value in SETTING_FLAGS]
    relief = [t.i for t in doc if t.lower_ in RELIEF_WORDS]
    bounds = reading.clauses(doc)
    painful = _pain_evidence(doc, results)
    signs = [r[0] for r in results if r[2] in FLAG_ENTITIES]
    keep = []
    for item in results:
        start, end, label, value = item
        if label == "triggers":
            if value == "sitting" and (_on_the_loo(doc, end) or _rising_from(doc, start)):
                continue
            if _all_positions_alike(doc, bounds, start, end):
                continue
            s_start, s_end = _segment(doc, start, end, breaks)
            if any(s_start <= c.start < s_end for c in elsewhere) or any(
                s_start <= i < s_end for i in relief
            ):
                continue
            c_start, c_end = reading._clause_of(bounds, start)
            if painful and not any(c_start <= i < c_end for i in painful):
                continue  # a message that speaks of pain, but not in this sentence
        elif (
            label == "improving"
            and value is False
            and any(t.lower_ in ("same", "difference") for t in doc[start:end])
            and _positions_listed(doc, bounds, start)
        ):
            continue  # "sat, lying or stood up, it's exactly the same": constant, not a trend
        elif label == "weeks_of_pain" or (label == ONSET_ENTITY and value == "birth"):
            # "For two days I've had a headache": how long another complaint has lasted.
            c_start, c_end = reading._clause_of(bounds, start)
            if any(c_start <= i < c_end for i in signs) and not any(
                c_start <= i < c_end for i in painful
            ):
                continue
            if label == ONSET_ENTITY and _age_of_baby(results, start, end):
                continue
        keep.append(item)
    return keep


def _pain_evidence(doc: Doc, results: list[tuple[int, int, str, Any]]) -> set[int]:
    """Token indexes that speak of the pain: pain words, places, qualities, scores."""
    painful = {t.i for t in doc if t.lower_ in PAIN_WORDS or t.norm_ in PAIN_WORDS}
    painful.update(t.i for t in doc[:-1] if t.lower_ == "ca" and doc[t.i + 1].lower_ == "n't")
    painful.update(t.i for t in doc[1:] if t.lower_ == "it" and doc[t.i - 1].lower_ in PAIN_DOERS)
    painful.update(r[0] for r in results if r[2] in PAIN_FIELDS)
    return painful


def _age_of_baby(results: list[tuple[int, int, str, Any]], start: int, end: int) -> bool:
    """'10 days since my c-section': the baby's age (a weeks span holds it), no onset."""
    return any(r[2] == "weeks" and r[0] < start and end <= r[1] for r in results)


def _on_the_loo(doc: Doc, end: int) -> bool:
    """'When I sit on the loo': where another complaint is noticed, not a trigger."""
    words = [t.lower_ for t in doc[end : end + 3]]
    return any(w in TOILET_WORDS for w in words) and words[:1] in (["on"], ["in"], ["at"])


def _rising_from(doc: Doc, start: int) -> bool:
    """'Getting up from the sofa', 'stand up after a long feed': rising, not sitting."""
    before = [t.lower_ for t in doc[max(0, start - RISE_WINDOW) : start]]
    return any(
        a == "up" and b in ("from", "off", "out", "after")
        for a, b in zip(before, before[1:], strict=False)
    )


def _positions_listed(doc: Doc, bounds: list[tuple[int, int]], start: int) -> bool:
    """Two or more positions in this sentence or the one before it."""
    c_start, c_end = reading._clause_of(bounds, start)
    p_start = reading._clause_of(bounds, c_start - 1)[0] if c_start > 0 else c_start
    return len({t.lower_ for t in doc[p_start:c_end] if t.lower_ in POSITION_WORDS}) >= 2


def _all_positions_alike(doc: Doc, bounds: list[tuple[int, int]], start: int, end: int) -> bool:
    """'Sitting, lying, standing, it makes no difference': constant pain, no trigger.

    Two or more positions listed in one sentence that, or the next, says none of them
    changes the pain (nothing helps, no difference, all the same, whatever I do).
    """
    c_start, c_end = reading._clause_of(bounds, start)
    listed = [t.i for t in doc[c_start:c_end] if t.lower_ in POSITION_WORDS]
    # Side by side, as a list ("sitting, lying, standing"), one of them this trigger's.
    near = [i for i in listed if abs(i - start) <= LIST_GAP]
    if len({doc[i].lower_ for i in near}) < 2 or not any(start <= i < end for i in listed):
        return False
    words = [
        t.lower_ for t in doc[c_start : max(c_end, reading.next_clause_end(doc, bounds, c_end))]
    ]
    return any(w in ALIKE_WORDS for w in words) or any(
        a == "no" and b == "difference" for a, b in zip(words, words[1:], strict=False)
    )


def _segment(doc: Doc, start: int, end: int, breaks: set[int]) -> tuple[int, int]:
    """The words around a span up to a comma, a full stop or a break word ("and I")."""
    while start > 0 and not _is_break_token(doc[start - 1]) and start - 1 not in breaks:
        start -= 1
    while end < len(doc) and not _is_break_token(doc[end]) and end not in breaks:
        end += 1
    return start, end


def _gestation_alone(
    doc: Doc, bounds: list[tuple[int, int]], start: int, end: int, weeks: float
) -> bool:
    """Weeks said on their own, as a sign-off or a line ("...my back is agony. 29 weeks").

    A clause of nothing but a number of weeks (and "pregnant", "today", "now"), in a
    message of more than that, is how far along she is, not how long something has
    lasted ("for 3 weeks" has its "for").
    """
    if not GESTATION_ALONE[0] <= weeks <= GESTATION_ALONE[1] or len(bounds) < 2:
        return False  # a message of just "12 weeks" answers the question asked
    c_start, c_end = reading._clause_of(bounds, start)
    rest = [
        t
        for t in doc[c_start:c_end]
        if not (start <= t.i < end) and not t.is_punct and not t.is_space
    ]
    return all(t.lower_ in GESTATION_WORDS for t in rest)


def _lone_one(doc: Doc, i: int) -> bool:
    """'one' is a number answer only on its own ("one", "maybe one?"), not "the front one"."""
    before = doc[i - 1] if i else None
    after = doc[i + 1] if i + 1 < len(doc) else None
    ok_before = before is None or before.is_punct or before.lower_ in _APPROX
    ok_after = after is None or after.is_punct or after.lower_ in ("or", "to", "and")
    return ok_before and ok_after


def _entity(text: str, doc: Doc, start: int, end: int, name: str, value: Any) -> dict:
    s, e = doc[start].idx, doc[end - 1].idx + len(doc[end - 1].text)
    return {"entity": name, "value": value, "start": s, "end": e, "text": text[s:e]}


def _apply_pipeline(nlp: Language, doc: Doc) -> Doc:
    for _name, proc in nlp.pipeline:
        doc = proc(doc)
    return doc


def _spans_key(nlp: Language) -> str:
    for _name, proc in nlp.pipeline:
        key = getattr(proc, "key", None)
        if isinstance(key, str):
            return key
    return SPANS_KEY


def _places_of_the_pain(
    doc: Doc, results: list[tuple[int, int, str, Any]]
) -> list[tuple[int, int, str, Any]]:
    """Drops a place that is not where her pain is.

    "At the front, over the bone": the pubic bone, not the front of the hip. "Lying on my
    side": a position. "A headache at the front", "the bump on the right side": another
    part of her body. "Pelvic pain" or "pelvic floor" beside a place she names: the
    problem's name, or her exercises, not a deep pain in the pelvis. A quality next to
    another part of her body, in a sentence that names no place of hers ("a tight band
    across my chest"): that part's, not the hip pain's.
    """
    pubic = [r for r in results if r[2] == "locations" and r[3] == "pubic"]
    named = {r[3] for r in results if r[2] == "locations"} - {"deep_pelvis"}
    places = [r[0] for r in results if r[2] == "locations"]
    bounds = reading.clauses(doc)
    keep = []
    for item in results:
        start, end, label, value = item
        if label == "qualities":
            c_start, c_end = reading._clause_of(bounds, start)
            near = doc[max(c_start, start - QUALITY_WINDOW) : min(c_end, end + QUALITY_WINDOW)]
            if any(t.lower_ in ELSEWHERE_FOR_QUALITY for t in near) and not any(
                c_start <= i < c_end for i in places
            ):
                continue  # "a tight band across my chest": not her hip pain's quality
        if label == "locations" and value == "deep_pelvis" and named:
            words = [t.lower_ for t in doc[start:end]]
            if any(
                a == "pelvic" and b in ("floor", "pain")
                for a, b in zip(words, words[1:], strict=False)
            ):
                continue  # "pelvic pain" for the whole problem, "pelvic floor" exercises
        if label == "locations" and value in ("front", "side", "back"):
            bare = all(
                t.lower_ in BARE_PLACE_WORDS or t.norm_ in BARE_PLACE_WORDS for t in doc[start:end]
            )
            before = {t.lower_ for t in doc[max(0, start - PLACE_WINDOW) : start]}
            if value == "front" and any(p[0] < end and start < p[1] for p in pubic):
                continue
            if bare and value == "side" and before & POSITION_VERBS:
                continue
            if bare and before & OTHER_BODY_PARTS:
                continue
        keep.append(item)
    return keep


def _question_topics(
    doc: Doc, kept: list[_Cand], results: list[tuple[int, int, str, Any]]
) -> list[tuple[int, int, str, Any]]:
    """Adds `question_topic` (an ask_* intent) for a topic inside a question clause.

    What the question names is not taken as something she said about herself: "can I
    still go running?" sets no returning_to_sport, "would a labral tear change this?" no
    labral_tear.
    """
    topics: dict[str, tuple[int, int, str, Any]] = {}
    asked: list[_Cand] = []
    for start, end in reading.clauses(doc):
        words = [t for t in doc[start:end] if not t.is_space and not t.is_punct]
        question = (end > start and doc[end - 1].text == "?") or (
            bool(words) and words[0].lower_ in QUESTION_WORDS
        )
        if not question:
            continue
        for c in kept:
            if c.label == "_ask" and start <= c.start < end:
                asked.append(c)
                topics.setdefault(c.value, (c.start, c.end, QUESTION_ENTITY, c.value))
    kept_results = [
        r
        for r in results
        if r[2] not in CASE_FIELDS
        or r[2] == "red_flags"
        or not any(r[0] < c.end and c.start < r[1] for c in asked)
    ]
    return kept_results + list(topics.values())


def _red_flag_results(
    doc: Doc,
    kept: list[_Cand],
    flags: list[tuple[_Cand, bool]],
    negated_concepts: set[int],
    results: list[tuple[int, int, str, Any]],
    signal: Any = None,
) -> list[tuple[int, int, str, Any]]:
    """Each warning sign once, under the strongest name its mentions earn (see reading)."""
    cue_spans = [c for c in kept if c.label in reading.CUE_LABELS]
    mentions: list[reading.Mention] = []
    for cand, unsure in flags:
        certainty = "clear" if cand.label == "red_flags" else "possible"
        judged = reading.judge(doc, cand.start, cand.end, cand.value, certainty, cue_spans, unsure)
        if judged is not None:
            mentions.append(reading.Mention(cand.start, cand.end, cand.value, judged))
    concepts = [c for c in kept if c.label in reading.CONCEPT_LABELS]
    severities = [value for _, _, label, value in results if label == "severity"]
    read = {c.value for c in kept if c.label in FLAG_LABELS}
    for mention in reading.concept_mentions(doc, concepts, negated_concepts) + (
        reading.unrelenting_mentions(concepts, negated_concepts, max(severities, default=None))
    ):
        read.add(mention.flag)
        judged = reading.judge(
            doc, mention.start, mention.end, mention.flag, "possible", cue_spans, False
        )
        if judged is not None:
            mentions.append(mention)
    stage, weeks = reading.stage_in_message(results)
    best = _strongest(doc, mentions, cue_spans, stage, weeks)
    if signal is not None and not best:
        # Nothing the patterns read is a sign here (none, or only one that does not
        # apply after the birth): the second signal reads the clauses.
        read |= {
            c.value
            for c in concepts
            if id(c) in negated_concepts and c.value not in reading.NEGATED_TOPIC_IS_SIGN
        }
        triggered = [r[0] for r in results if r[2] == "triggers"]
        proposed = _signal_mentions(doc, read, cue_spans, signal, triggered)
        best = _strongest(doc, proposed, cue_spans, stage, weeks)
    return [(m.start, m.end, name, m.flag) for _, m, name in best.values()]


def _strongest(
    doc: Doc, mentions: list[reading.Mention], cue_spans: list[_Cand], stage: Any, weeks: Any
) -> dict[str, tuple[int, reading.Mention, str]]:
    """Each sign's strongest mention and its name, given the message's stage."""
    best: dict[str, tuple[int, reading.Mention, str]] = {}
    for mention in mentions:
        mention = reading.lighter_after_birth(doc, mention, cue_spans, stage)
        if mention is None:
            continue
        name = reading.by_stage(mention, stage, weeks)
        if name is None:
            continue
        rank = FLAG_ENTITIES.index(name)
        if mention.flag not in best or rank < best[mention.flag][0]:
            best[mention.flag] = (rank, mention, name)
    return best


def _signal_mentions(
    doc: Doc, read: set[str], cue_spans: list[_Cand], signal: Any, triggered: list[int]
) -> list[reading.Mention]:
    """The second signal's possible mentions (components/red_flag_signal.py).

    Asked only of a message in which the patterns found no warning sign, and only for
    signs they did not read in it at all (`read`): a sign they denied ("no bleeding")
    or set aside keeps their reading. Pain worse in a position ("still worse lying on
    it") is pain that changes with position: not proposed as severe constant pain.
    """
    seen = set(read)
    bounds = reading.clauses(doc)
    found: list[reading.Mention] = []
    for (start, end), flag in zip(
        bounds, signal.propose([doc[s:e].text for s, e in bounds]), strict=True
    ):
        if flag is None or flag in seen:
            continue
        if flag == CONSTANT_PAIN and any(start <= i < end for i in triggered):
            continue
        if reading.judge_clause(doc, start, end, flag, cue_spans) is not None:
            found.append(reading.Mention(start, end, flag, "possible"))
            seen.add(flag)
    return found


def _extract(nlp: Language, text: str, signal: Any = None) -> list[dict[str, Any]]:
    _register_extensions()  # a pipeline restored by spacy.load, in a new process
    original = text[:MAX_CHARS]
    if not original.strip():
        return []
    doc = _apply_pipeline(nlp, _prepare_doc(nlp, _clean(original)))
    cands: list[_Cand] = []
    breaks: set[int] = set()
    for span in doc.spans.get(_spans_key(nlp), []):
        label, pid = span.label_, span.id_
        if label == "_break":
            breaks.add(span.start)
            continue
        value = _span_value(doc, span.start, span.end, label, pid)
        if value is not None:
            cands.append(_Cand(span.start, span.end, label, value))
    kept = _resolve_overlaps(cands)
    # The baby's age when the pain began ("since she was 3 weeks old") is no current age.
    onsets = [c for c in kept if c.label == ONSET_ENTITY and str(c.value).startswith("birth+")]
    kept = [
        c
        for c in kept
        if c.label != "weeks" or not any(o.start <= c.start and c.end <= o.end for o in onsets)
    ]

    cues = [c for c in kept if c.label in ("_neg", "_unsure")]
    results: list[tuple[int, int, str, Any]] = []
    flags: list[tuple[_Cand, bool]] = []  # red-flag mentions, and whether "unsure" scopes them
    negated_concepts: set[int] = set()
    covered: set[int] = set()
    # A negation that is part of a sign phrase ("doesn't know when", "can't hold"), or
    # overlaps one ("couldn't feel" in "couldn't feel the"), is the sign speaking, not a
    # denial of the topic next to it ("...when she needs to pee").
    signs = [c for c in kept if c.label in reading.CONCEPT_LABELS and c.label != "_topic"]
    in_sign = {id(q) for q in cues if any(q.start < s.end and s.start < q.end for s in signs)}
    for c in kept:
        scoping = [q for q in cues if _negation_scope(doc, q, c, breaks)]
        if c.label in reading.CONCEPT_LABELS:
            scoping = [q for q in scoping if id(q) not in in_sign]
        cue = max(scoping, key=lambda q: q.end) if scoping else None
        if c.label in reading.CONCEPT_LABELS:
            if cue is not None and cue.label == "_neg":
                negated_concepts.add(id(c))
            continue
        covered.update(range(c.start, c.end))
        if c.label in FLAG_LABELS:
            if cue is None or cue.label == "_unsure":  # "not sure if": a possible mention
                flags.append((c, cue is not None))
            continue
        if c.label in INTERNAL_LABELS:
            continue
        value = c.value
        if c.label == ONSET_ENTITY:
            if cue is None:
                results.append((c.start, c.end, c.label, value))
            continue
        if cue is not None:
            if cue.label == "_unsure":
                continue
            if c.label in BOOL_FIELDS:
                value = not value
            elif c.label in LIST_FIELDS or c.label in STR_FIELDS or c.label == "severity":
                continue
        results.append((c.start, c.end, c.label, value))
    results = _past_pregnancy(doc, results, breaks)
    results = _weeks_she_is(doc, results)
    results += _red_flag_results(doc, kept, flags, negated_concepts, results, signal)
    results = _triggers_of_the_pain(doc, kept, results, breaks)
    results = _question_topics(doc, kept, results)
    results = _places_of_the_pain(doc, results)

    values = doc.user_data.get("hip_numbers", {})
    bounds = reading.clauses(doc)
    for tok in doc:
        if tok.norm_ != "#num" or tok.i in covered or tok.idx not in values:
            continue
        v = values[tok.idx]
        nxt = tok.i + 1
        if nxt < len(doc) and doc[nxt].text == "-" and nxt + 1 < len(doc):
            if doc[nxt + 1].norm_ == "#unit":
                nxt += 1
        if nxt < len(doc) and doc[nxt].norm_ == "#unit" and nxt not in covered:
            factor = _unit_factor(doc[nxt]) or 1.0
            if factor == 1.0 and _gestation_alone(doc, bounds, tok.i, nxt + 1, v):
                results.append((tok.i, nxt + 1, "weeks", _round_num(v)))
                continue
            results.append((tok.i, nxt + 1, "duration", _round_num(v * factor)))
        elif tok.lower_ != "one" or _lone_one(doc, tok.i):
            results.append((tok.i, tok.i + 1, "number", _round_num(v, 3)))

    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for start, end, name, value in sorted(results, key=lambda r: (r[0], r[1], r[2])):
        key = (name, json.dumps(value))
        if key in seen:
            continue
        seen.add(key)
        out.append(_entity(original, doc, start, end, name, value))
    return out


def extract(nlp: Language, text: str, signal: Any = None) -> list[dict[str, Any]]:
    """Extract case fields and helper entities from one message.

    Args:
        nlp: A pipeline from ``build_nlp`` (or ``spacy.load`` of one saved with to_disk).
        text: The user's message; only the first ``MAX_CHARS`` characters are read.
        signal: A ``red_flag_signal.RedFlagSignal``: its proposals become possible
            mentions of warning signs the patterns did not read; None: patterns only.

    Returns:
        Entity dicts ``{"entity", "value", "start", "end", "text"}`` in text order, with
        character offsets into ``text``. Never raises: on any error it logs and returns [].
    """
    if not isinstance(text, str) or not text:
        return []
    try:
        return _extract(nlp, text, signal)
    except Exception:  # noqa: BLE001 - the bot must never crash on odd input
        logger.exception("hip extractor failed on a message of %d chars", len(text))
        return []
