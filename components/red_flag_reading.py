"""How sure a mention of a warning sign is: clear, possible, or not one at all.

Pure spaCy on the extractor's document (no Rasa). The extractor finds red-flag spans
with its patterns (`red_flags`: a plain statement; `possible_red_flags`: a lay or partial
phrase) and the cue spans of `red_flag_cues.jsonl`; this module reads each mention in
its clause (the words between . ! ? ; or a line break):

- dropped: negated after the fact ("Bleeding: none", "fever - no"), a dramatic event
  long past ("I fell off a horse as a teenager"), a simile for the trauma or pain
  flags ("like I'd been hit by a truck"), numbness from sitting ("my leg went to sleep
  after sitting cross-legged"), a leak with a sneeze or a laugh, someone else's
  history ("my mum had clots"), blood from elsewhere in the same clause ("a nosebleed");
- possible: a question about it ("is that normal?"), a hedge ("maybe", "a little",
  "not sure if"), a past event that has since settled (a simile for other flags is
  how she describes them: "feels like I've wet myself" stays as it is);
- the signs that only apply in pregnancy (the rulebook's `stages`: contractions or
  fluid before 37 weeks, the baby moving less) are dropped when the same message says
  she has had her baby (or, for tightenings, that she is 37 weeks or more), and are
  `pregnancy_red_flags` when the message does not say whether she is pregnant: the
  conversation knows, or asks;
- after the birth, bleeding said to be light ("just spotting", "a little", "brownish")
  is a possible mention: only heavy bleeding or clots are the sign then.

A second, independent signal: a `_topic` word and a `_sign` word of the same flag in
one clause ("the baby" + "quiet"), neither negated, are a possible mention of it even
when no pattern knows the phrase. For severe constant pain, how bad (an `_intense`
word, or a severity of 7 or more) and that it does not let up (an `_unrelenting` word)
anywhere in the message are a possible mention ("an 8 all the time, day and night").

For an absence sign (the baby moving less) the words of a settling that are themselves
an absence ("nothing since", "not since", "settled down": cue id `quiet`) are the sign,
not a settling: "one tiny kick at 9 and nothing since". A near miss just before a fall
word is no fall ("nearly tripped"), and "burning up" followed by where it spreads
("burning up behind my breastbone") is heartburn or pain, not a temperature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from triage import red_flag_applies
from triage.contract import WEEKS_MAX

CUE_LABELS = frozenset(
    {
        "_hedge",
        "_question",
        "_past",
        "_resolved",
        "_gone",
        "_simile",
        "_positional",
        "_exertion",
        "_other",
        "_nearly",
        "_elsewhere",
        "_light",
        "_breast",
    }
)
CONCEPT_LABELS = frozenset({"_topic", "_sign", "_intense", "_unrelenting"})
# Signs that are an absence: a negated topic ("not felt him", "no kicks today") says it.
NEGATED_TOPIC_IS_SIGN = frozenset({"reduced_baby_movements"})
# ...negated within its own clause ("baby: kicking loads" after "fluid: none" is not).
ABSENCE_WORDS = frozenset({"not", "no", "never", "n't", "nothing", "without", "barely", "hardly"})
WEEKS_PREGNANT_MAX = WEEKS_MAX["pregnant"]
SIMILE_DROPS = frozenset({"fall_or_trauma", "severe_constant_pain"})
POSITIONAL = frozenset({"leg_numbness_weakness", "saddle_numbness"})
AFTER_NEGATION = frozenset(
    {"no", "none", "nil", "nope", "nah", "negative", "0", "zero", "n/a", "na", "not", "never"}
)
HEADER_MARKS = frozenset({":", "-", "–", "—", "=", "?", "/"})
CLAUSE_ENDS = frozenset({".", "!", "?", ";"})
SIMILE_WINDOW = 3
NEARLY_WINDOW = 1  # "nearly tripped", "almost slipped over"
NEAR_MISS_DROPS = frozenset({"fall_or_trauma"})
ABSENCE_CUE = "quiet"  # cue id: a settling word that is itself an absence ("nothing since")
# Severe pain that eases with rest or a change of position is not the sign.
EASES = frozenset({"fades", "eases", "settles", "gone", "disappears", "subsides", "vanishes"})
SHE_IS = frozenset({"'m", "am", "m", "i", "get", "got", "be"})  # "once I'm settled in bed"
# ...nor when it eases only a little ("maybe eases a tiny bit if I lie on my back").
EASE_DENIALS = frozenset(
    "not n't no nothing never without nor hardly barely maybe only slightly".split()
)
EASE_PARTLY = frozenset({"bit", "little", "slightly", "tad", "fraction", "into"})
# ...nor "gone from a 3 to a 9", "gone up", "gone right through me": worse, not easing.
GONE_WORSE = frozenset("from to up worse through right straight down".split())
SEVERE_FROM = 7  # a severity this high counts as "how bad" for severe_constant_pain
SPREADS = frozenset(
    {"behind", "into", "through", "along", "across", "towards", "toward", "under", "down"}
    | {"my", "in", "the", "from", "to", "round", "around", "over"}
)
CLAUSES_KEY = "hip_clauses"  # doc.user_data: (token count, clause bounds)
AS_USUAL = frozenset({"usual", "normal", "ever", "always"})  # "kicking as usual"
WEE_WORDS = frozenset({"wee", "pee", "urine", "bladder", "weeing", "peeing", "wees"})
OTHER_PREGNANCY = "other_pregnancy"  # _past cue id: her previous pregnancy
OTHER_WINDOW = 4  # "my mum had clots": someone else just before the sign
EXERTION_NEGATED_WINDOW = 3  # "no sneeze", "without a cough", "not even a laugh"
RETURNED = "returned"  # cue id: "hasn't come back", which for numbness is the sign going on
FEELING_BACK = "feeling_back"  # cue id: "it had all come back", for numbness only
STOPPED = "stopped"  # cue id: "has stopped": asked about (after the birth: settled)...
STOPPED_WINDOW = 3  # "bleeding has now stopped": the stop follows its mention closely
STOPPING_IS_SIGN = frozenset({"reduced_baby_movements", "bladder_bowel_control"})  # ...not these
LOO = "loo"  # cue id: on the loo, where numbness between the legs is noticed
LONG_WHILE = frozenset({"for", "ages", "hours", "hour", "minutes", "mins", "forever"})
# "Chest is fine", "breathing's normal": a topic denied just after it is said.
FINE_AFTER = frozenset({"fine", "ok", "okay", "normal", "good", "alright", "clear", "grand"})
COPULAS = frozenset({"is", "'s", "s", "are", "'re", "feels", "feel", "seems", "was", "been", "all"})


@dataclass
class Mention:
    """One mention of a warning sign found in the message."""

    start: int
    end: int
    flag: str
    certainty: str  # "clear" or "possible"


def clauses(doc: Any) -> list[tuple[int, int]]:
    """(start, end) token ranges of the clauses of `doc` (worked out once per doc)."""
    held = doc.user_data.get(CLAUSES_KEY)
    if held is not None and held[0] == len(doc):
        return held[1]
    bounds = _clauses(doc)
    doc.user_data[CLAUSES_KEY] = (len(doc), bounds)
    return bounds


def _clauses(doc: Any) -> list[tuple[int, int]]:
    bounds, start = [], 0
    for token in doc:
        ends_clause = token.text in CLAUSE_ENDS or "\n" in token.text or "\n" in token.whitespace_
        if ends_clause:
            bounds.append((start, token.i + 1))
            start = token.i + 1
    if start < len(doc):
        bounds.append((start, len(doc)))
    return bounds or [(0, len(doc))]


def _clause_of(bounds: list[tuple[int, int]], index: int) -> tuple[int, int]:
    return next(((s, e) for s, e in bounds if s <= index < e), (0, 0))


def _negated_after(doc: Any, end: int) -> bool:
    """A header answered no: "Bleeding: none", "fever - no", "spotting? nope"."""
    i, marks = end, 0
    while i < len(doc) and (doc[i].text in HEADER_MARKS or doc[i].is_space) and marks < 3:
        marks += not doc[i].is_space
        i += 1
    if marks == 0 or i >= len(doc):
        return False
    return doc[i].lower_ in AFTER_NEGATION or doc[i].norm_ in AFTER_NEGATION


def _cues_in(cues: Iterable[Any], start: int, end: int, flag: str = "") -> set[str]:
    return {
        c.label
        for c in cues
        if start <= c.start
        and c.end <= end
        and not (c.value == ABSENCE_CUE and flag in NEGATED_TOPIC_IS_SIGN)
    }


def _after_simile(cues: Iterable[Any], cue: Any) -> bool:
    """A simile for the feeling ("like sitting on a bag of ice"), not where she sat."""
    return any(c.label == "_simile" and 0 <= cue.start - c.end <= 1 for c in cues)


def _spreads_after(doc: Any, start: int, end: int) -> bool:
    """Where a burning goes ("burning up behind my breastbone"), not a temperature."""
    return (
        doc[start].lower_ == "burning"
        and doc[end - 1].lower_ == "up"
        and end < len(doc)
        and doc[end].lower_ in SPREADS
    )


def judge(
    doc: Any, start: int, end: int, flag: str, certainty: str, cues: list[Any], unsure: bool
) -> str | None:
    """The certainty of one mention in its clause: "clear", "possible" or None (dropped)."""
    bounds = clauses(doc)
    c_start, c_end = _clause_of(bounds, start)
    found = _cues_in(cues, c_start, c_end, flag)
    if _negated_after(doc, end):
        return None
    if flag in NEAR_MISS_DROPS and any(
        c.label == "_nearly" and 0 <= start - c.end <= NEARLY_WINDOW for c in cues
    ):
        return None  # "nearly tripped on the kerb but caught myself"
    if flag == "fever" and _spreads_after(doc, start, end):
        return None
    if flag == "severe_constant_pain" and _eases_after(doc, bounds, start, c_end):
        # "a 9 when I roll over, but once I'm settled it fades to nothing": not the sign
        # as the patterns half-read it; said plainly, still asked about, never dropped.
        return "possible" if certainty == "clear" else None
    gone = [
        c
        for c in cues
        if c.label == "_gone"
        and c_start <= c.start
        and c.end <= c_end
        and not (c.start < end and start < c.end)  # inside the sign's own words
    ]
    # "Has stopped" just after the mention: asked about, not dropped (see below).
    stopped = any(
        c.value == STOPPED and flag not in STOPPING_IS_SIGN and _just_after(end, c) for c in gone
    )
    settled = any(
        not (c.value == RETURNED and flag in POSITIONAL)
        and not (c.value == ABSENCE_CUE and flag in NEGATED_TOPIC_IS_SIGN)
        and not (c.value == FEELING_BACK and flag not in POSITIONAL)
        and c.value != STOPPED
        for c in gone
    )
    if "_past" in found and "_resolved" in found or settled:
        return None  # long past and settled since; "all better now", "nothing since"
    if any(
        c.label == "_past" and c.value == OTHER_PREGNANCY and c_start <= c.start < c_end
        for c in cues
    ):
        return None  # "last pregnancy I was on crutches": that pregnancy's, not now
    positional = [
        c
        for c in cues
        if c.label == "_positional"
        and c_start <= c.start
        and c.end <= c_end
        and not _after_simile(cues, c)
    ]
    loo_only = positional and all(
        c.value == LOO and not _sat_long(doc, c, c_end) for c in positional
    )
    if flag in POSITIONAL and positional and not (flag == "saddle_numbness" and loo_only):
        return None  # "after sitting cross-legged" (not "like sitting on a bag of ice")
    words = [t.lower_ for t in doc[c_start:c_end]]
    if flag == "reduced_baby_movements" and _as_usual(words):
        return None  # "baby's wriggling as usual": moving as she always does
    if (
        flag == "bladder_bowel_control"
        and any(w.startswith("constipat") for w in words)
        and not any(w in WEE_WORDS for w in words)
    ):
        return None  # "constipated, I sit for ages and nothing comes": not lost control
    if flag == "bladder_bowel_control" and _exertion_excuses(doc, cues, c_start, c_end):
        return None  # a leak with a sneeze or a laugh: stress incontinence
    if flag == "heavy_bleeding" and "_elsewhere" in found:
        return None  # "blood everywhere, my third nosebleed this week"
    near = [c for c in cues if 0 <= start - c.end <= OTHER_WINDOW and c.label == "_other"]
    if near and flag != "reduced_baby_movements":
        return None  # "my mum had clots": someone else's history
    simile = any(c.label == "_simile" and 0 <= start - c.end <= SIMILE_WINDOW for c in cues)
    if simile and flag in SIMILE_DROPS:
        return None
    if "_past" in found and flag in ("fall_or_trauma", "fever", "heavy_bleeding"):
        return None  # "I fell off a horse years ago": long before this pain
    question = c_end > c_start and doc[c_end - 1].text == "?"
    if unsure or question or stopped or found & {"_hedge", "_question", "_resolved", "_past"}:
        return "possible"  # "it had stopped by the evening": in pregnancy still asked
    if flag == "saddle_numbness" and positional:
        return "possible"  # noticed sitting on the loo: asked, not alarmed
    if flag == "chest_pain_breathless" and "_breast" in found:
        return "possible"  # "my chest is agony, both boobs rock hard": asked about
    return certainty


def _exertion_excuses(doc: Any, cues: Iterable[Any], c_start: int, c_end: int) -> bool:
    """A sneeze, cough or jump in the clause that brings the leak on ("when I sneeze").

    One said to be absent ("no urge, no sneeze, nothing", "without even a cough") makes
    the leak more worrying, not less: it excuses nothing.
    """
    for c in cues:
        if c.label != "_exertion" or not (c_start <= c.start and c.end <= c_end):
            continue
        before = doc[max(c_start, c.start - EXERTION_NEGATED_WINDOW) : c.start]
        if not any(t.lower_ in ABSENCE_WORDS or t.norm_ in ABSENCE_WORDS for t in before):
            return True
    return False


def _just_after(end: int, cue: Any) -> bool:
    """Whether the cue follows the mention closely ("bleeding has now stopped").

    Then it is about that mention, not a later one ("...had stopped, then clots").
    """
    return 0 <= cue.start - end <= STOPPED_WINDOW


def _as_usual(words: list[str]) -> bool:
    """'Wriggling as usual', not 'not as active as normal' or 'less than usual'."""
    for i, (a, b) in enumerate(zip(words, words[1:], strict=False)):
        before = words[max(0, i - 5) : i]
        if a == "as" and b in AS_USUAL and "as" not in before[-3:]:
            if not any(w in ("not", "n't", "less", "never", "nothing") for w in before):
                return True
    return False


def next_clause_end(doc: Any, bounds: list[tuple[int, int]], c_end: int) -> int:
    """Where the sentence after the one ending at `c_end` ends (`c_end` when none)."""
    return _clause_of(bounds, c_end)[1] if c_end < len(doc) else c_end


def _eases_after(doc: Any, bounds: list[tuple[int, int]], start: int, c_end: int) -> bool:
    """The pain said to ease, in its sentence or the next ("then it's gone and I'm fine").

    Not when denied ("nothing eases it", "it doesn't settle"): that is the sign.
    """
    for t in doc[start : max(c_end, next_clause_end(doc, bounds, c_end))]:
        before, after = doc[max(0, t.i - 3) : t.i], doc[t.i + 1 : t.i + 4]
        she_settled = t.lower_ == "settled" and t.i > 0 and doc[t.i - 1].norm_ in SHE_IS
        if (
            (t.lower_ in EASES or she_settled)
            and not any(w.lower_ in EASE_DENIALS or w.norm_ in EASE_DENIALS for w in before)
            and not any(w.lower_ in EASE_PARTLY for w in after)
            and not (t.lower_ == "gone" and any(w.lower_ in GONE_WORSE for w in after))
        ):
            return True
    return False


def _sat_long(doc: Any, cue: Any, c_end: int) -> bool:
    """Sat there a long while ("on the loo scrolling for 20 minutes"): the cause."""
    return any(t.lower_ in LONG_WHILE for t in doc[cue.end : min(c_end, cue.end + 4)])


def denied_after(doc: Any, concept: Any) -> bool:
    """A topic denied just after it is named: "Chest is fine", "heart isn't racing".

    Not for a sign that is itself an absence: "the baby isn't moving" is the sign.
    """
    if concept.value in NEGATED_TOPIC_IS_SIGN:
        return False
    i, end = concept.end, min(len(doc), concept.end + 3)
    while i < end and doc[i].lower_ in COPULAS:
        i += 1
    if i == concept.end or i >= len(doc):
        return False
    return doc[i].lower_ in FINE_AFTER or doc[i].norm_ in ("not", "n't")


def judge_clause(doc: Any, start: int, end: int, flag: str, cues: list[Any]) -> str | None:
    """`judge` for a mention that is a whole clause (the second signal's).

    The cues that count just before a phrase count anywhere in the clause ("my mum had
    a clot", "like I'd been hit by a truck", "nearly fell").
    """
    inside = {c.label for c in cues if start <= c.start and c.end <= end}
    if "_other" in inside and flag != "reduced_baby_movements":
        return None
    if (
        "_simile" in inside
        and flag in SIMILE_DROPS
        or "_nearly" in inside
        and flag in NEAR_MISS_DROPS
    ):
        return None
    return judge(doc, start, end, flag, "possible", cues, False)


def concept_mentions(doc: Any, concepts: list[Any], negated: set[int]) -> list[Mention]:
    """A `_topic` and a `_sign` of the same flag in one clause: a possible mention."""
    found: list[Mention] = []
    for c_start, c_end in clauses(doc):
        here = [c for c in concepts if c_start <= c.start < c_end]
        inside = [
            c
            for c in here
            if id(c) not in negated and not (c.label == "_topic" and denied_after(doc, c))
        ]
        # "I haven't felt him since breakfast": for these signs a negated topic is the sign.
        absent = {
            c.value
            for c in here
            if c.label == "_topic"
            and id(c) in negated
            and c.value in NEGATED_TOPIC_IS_SIGN
            and any(t.lower_ in ABSENCE_WORDS for t in doc[c_start : c.start])
        }
        flags = absent | (
            {c.value for c in inside if c.label == "_topic"}
            & {c.value for c in inside if c.label == "_sign"}
        )
        inside = here if absent else inside
        for flag in sorted(flags):
            spans = [c for c in inside if c.value == flag]
            found.append(
                Mention(min(c.start for c in spans), max(c.end for c in spans), flag, "possible")
            )
    return found


def unrelenting_mentions(
    concepts: list[Any], negated: set[int], severity: float | None
) -> list[Mention]:
    """How bad (`_intense` or a severity of 7+) and not letting up (`_unrelenting`)."""
    kept = [c for c in concepts if id(c) not in negated]
    steady = [c for c in kept if c.label == "_unrelenting"]
    intense = any(c.label == "_intense" for c in kept) or (severity or 0) >= SEVERE_FROM
    # Without a word of how bad, it takes two separate sayings that nothing lets it up
    # ("a constant ache ... none of it makes a dent"): asked about, never alarmed.
    if not steady or not (intense or _separate(steady) >= 2):
        return []
    first = min(steady, key=lambda c: c.start)
    return [Mention(first.start, first.end, first.value, "possible")]


def _separate(spans: list[Any]) -> int:
    """How many separate places the spans are in (overlapping ones count once)."""
    count, reach = 0, -1
    for span in sorted(spans, key=lambda c: c.start):
        if span.start >= reach:
            count += 1
        reach = max(reach, span.end)
    return count


def stage_in_message(results: Iterable[tuple[int, int, str, Any]]) -> tuple[str | None, Any]:
    """The stage and the weeks the message itself states (None when it doesn't)."""
    stages = {value for _, _, label, value in results if label == "stage"}
    weeks = [value for _, _, label, value in results if label == "weeks"]
    stage = next(iter(stages)) if len(stages) == 1 else None
    if stage is None and not stages and weeks and weeks[-1] <= WEEKS_PREGNANT_MAX:
        stage = "pregnant"  # "34 wks", with no birth mentioned: weeks pregnant
    return stage, (weeks[-1] if weeks else None)


def lighter_after_birth(
    doc: Any, mention: Mention, cues: list[Any], stage: str | None
) -> Mention | None:
    """After the birth, bleeding said to be light is a possible mention.

    Only heavy bleeding or clots are the sign then: "just spotting now, brownish" is
    asked about with the threshold, and bleeding that has stopped is none (None). In
    pregnancy any bleeding counts: left as it is.
    """
    if stage != "postpartum" or mention.flag != "heavy_bleeding":
        return mention
    c_start, c_end = _clause_of(clauses(doc), mention.start)
    if any(c.value == STOPPED and _just_after(mention.end, c) for c in cues):
        return None  # "bleeding stopped last week": the bleeding after the birth is over
    if mention.certainty == "clear" and "_light" in _cues_in(cues, c_start, c_end):
        return Mention(mention.start, mention.end, mention.flag, "possible")
    return mention


def by_stage(mention: Mention, stage: str | None, weeks: Any) -> str | None:
    """The entity name a mention is reported under, given the message's own stage.

    "red_flags" (clear), "possible_red_flags", "pregnancy_red_flags" (a clear sign that
    only applies in pregnancy, the stage not said here), or None: not a warning sign.
    """
    applies = red_flag_applies(mention.flag, stage, weeks)  # the rulebook's stages
    if applies is False:
        return None
    if applies is None and mention.certainty == "clear":
        return "pregnancy_red_flags"
    return "red_flags" if mention.certainty == "clear" else "possible_red_flags"
