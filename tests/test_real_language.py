"""Real women's words: table-driven cases from the real-language corpus's DEV part
(tests/corpus/dev.yml; the test part is never used here), and the kinds of language
issue by issue: warning signs told as stories, hedges and questions; no crying wolf;
time, stage, places, impact and night; side questions; asking what can change the
outcome. The corpus figures themselves are reported by `make eval-real`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from actions import interview
from bench import real_eval
from components import extractor, red_flag_signal
from triage import worth_asking

ROOT = Path(__file__).resolve().parents[1]
DEV = yaml.safe_load((ROOT / "tests" / "corpus" / "dev.yml").read_text(encoding="utf-8"))["texts"]
FLAGGED = [item for item in DEV if item["red_flags"]]
CLEAN = [item for item in DEV if not item["red_flags"]]


@pytest.fixture(scope="module")
def nlp():
    return extractor.build_nlp()


def first_reply(nlp, text: str, current: dict | None = None, requested: str | None = None):
    """The extractor as it ships (with the second signal) and the interview's reading."""
    found = extractor.extract(nlp, text, red_flag_signal.default())
    entities = [{**e, "extractor": interview.EXTRACTOR} for e in found]
    return entities, interview.updates_from_message(
        current or {}, entities, "describe_pain", text, requested
    )


def names(entities, entity):
    return {e["value"] for e in entities if e["entity"] == entity}


# ------------------------------------------------------- 2. red flags never missed


@pytest.mark.parametrize("item", FLAGGED, ids=[item["id"] for item in FLAGGED])
def test_every_warning_sign_gets_the_advice_or_the_question(nlp, item):
    reply = real_eval.offline_reply(nlp, item, red_flag_signal.default())
    assert reply["urgent"] or reply["confirming"], (item["red_flags"], item["text"])


@pytest.mark.parametrize(
    "text,flag",
    [
        ("I ended up crawling to the bathroom on my hands and knees", "cannot_bear_weight"),
        ("the baby's been really quiet since this morning", "reduced_baby_movements"),
        ("I still bleed a little, is that normal?", "heavy_bleeding"),
        ("my hips are tight all the time, does that count as tightenings?", None),
        ("not sure if it's numb exactly, just odd and tingly down below", "saddle_numbness"),
        ("I've been having dark thoughts I'd rather not type", "self_harm_thoughts"),
        # the held-out part's weakest signs, in kinds of language the dev part lacked
        ("30 weeks, one tiny kick at breakfast and nothing since", "reduced_baby_movements"),
        ("Kicks: way down since yesterday", "reduced_baby_movements"),
        ("my husband says she's hardly budged all evening", "reduced_baby_movements"),
        ("writing for my wife: she doesn't know when she needs to pee", "bladder_bowel_control"),
        ("it's a 9 and doesn't matter if I sit, lie or stand", "severe_constant_pain"),
        ("a heavy pressure and a backache that come in waves", "contractions_or_fluid"),
        ("a big dog knocked me clean off my feet this morning", "fall_or_trauma"),
        ("my vision's gone wonky, like looking through water", "pre_eclampsia_signs"),
        ("my teeth are chattering under two duvets and I feel dreadful", "sepsis_signs"),
        ("I sit on the loo and nothing comes even though I'm bursting", "bladder_bowel_control"),
        ("since last night hardly anything comes out when I need a wee", "bladder_bowel_control"),
        ("a bit of pinkish stuff on the loo roll this morning, 33 weeks", "heavy_bleeding"),
        ("my little acrobat has had a very lazy day in there", "reduced_baby_movements"),
        ("I had to poke the bump loads to get anything from him", "reduced_baby_movements"),
        # a second round for the held-out part's weakest signs (dev-408..467)
        (
            "no urge, no sneeze, nothing, and then I realise I've wet myself",
            "bladder_bowel_control",
        ),
        ("when I sit on the loo I can hardly feel the paper, a bit numb", "saddle_numbness"),
        ("went dead down below in the night and the feeling hasn't come back", "saddle_numbness"),
        ("it's not totally numb round my bottom, more tingly and odd", "saddle_numbness"),
        ("I couldn't feel the flannel between my legs this morning", "saddle_numbness"),
        (
            "wobbled and sat down hard on the step, don't think it counts as a fall",
            "fall_or_trauma",
        ),
        ("a van went into the back of us at the lights, 31 weeks", "fall_or_trauma"),
        ("I get winded just folding the washing, heart thumping away", "chest_pain_breathless"),
        ("it's there every minute of the day and it's properly bad", "severe_constant_pain"),
        (
            "an 8 most of the day, and paracetamol doesn't make any difference",
            "severe_constant_pain",
        ),
        (
            "baby is 3 weeks, the bleeding had stopped, then today I passed huge clots",
            "heavy_bleeding",
        ),
        # a third round, from fresh dev texts read before any tuning (dev-508..617)
        ("my husband says I slumped at the table and went grey, I came round on the floor",
         "chest_pain_breathless"),
        ("wee ran warm down my leg in the queue, no feeling that I needed to go first",
         "bladder_bowel_control"),
        ("a constant ache on the bone, and none of it makes a dent, not ice, not rest",
         "severe_constant_pain"),
        ("it never switches off now, there in the background all day", "severe_constant_pain"),
        ("I'm wheezing by the top of the stairs and I wasn't a month ago",
         "chest_pain_breathless"),
        ("it's gone from a niggle to agony since lunch and nothing helps",
         "severe_constant_pain"),
        ("a constant 9 all day, it only eases a tiny bit if I lie flat", "severe_constant_pain"),
    ],
)  # fmt: skip
def test_lay_words_stories_and_hedges_are_at_least_asked_about(nlp, text, flag):
    entities, _ = first_reply(nlp, text)
    found = set().union(*(names(entities, name) for name in extractor.FLAG_ENTITIES))
    if flag is None:  # a question about a sign is asked about, not an emergency
        assert not names(entities, "red_flags"), entities
    else:
        assert flag in found, entities


@pytest.mark.parametrize(
    "text,flag",
    [
        ("I still bleed a little, is that normal?", "heavy_bleeding"),
        ("I think my waters might have gone?", "contractions_or_fluid"),
        ("maybe a bit shivery today", "fever"),
        # after the birth only heavy bleeding or clots are the sign: light is asked about
        (
            "4 weeks since the birth, the bleeding is brownish and just spotting now",
            "heavy_bleeding",
        ),
        ("tried pillows and a hot water bottle, nothing works", "severe_constant_pain"),
    ],
)
def test_a_question_or_hedge_is_a_possible_mention_not_an_emergency(nlp, text, flag):
    entities, _ = first_reply(nlp, text)
    assert flag in names(entities, "possible_red_flags") | names(entities, "pregnancy_red_flags")
    assert flag not in names(entities, "red_flags")


@pytest.mark.parametrize(
    "text,flag,expected",
    [
        ("I had my baby 3 weeks ago and I keep getting tightenings", "contractions_or_fluid", None),
        ("the baby's been quiet all day, she's 5 weeks old", "reduced_baby_movements", None),
        ("I'm 38 weeks and my belly keeps going hard every few minutes", "contractions_or_fluid",
         None),
        ("I'm 30 weeks pregnant and my waters broke", "contractions_or_fluid", "red_flags"),
        ("my waters broke", "contractions_or_fluid", "pregnancy_red_flags"),
    ],
)  # fmt: skip
def test_signs_that_only_apply_in_pregnancy_follow_her_stage(nlp, text, flag, expected):
    entities, _ = first_reply(nlp, text)
    where = {name for name in extractor.FLAG_ENTITIES if flag in names(entities, name)}
    assert where == ({expected} if expected else set()), entities


# ------------------------------------------------------------ 3. no crying wolf


@pytest.mark.parametrize("item", CLEAN, ids=[item["id"] for item in CLEAN])
def test_no_urgent_advice_without_a_warning_sign(nlp, item):
    reply = real_eval.offline_reply(nlp, item, red_flag_signal.default())
    assert not reply["urgent"], (reply["recorded"], item["text"])


@pytest.mark.parametrize(
    "text",
    [
        "Spotting - none, cramps - a bit, fever: no",
        "it feels like I'd been hit by a truck",
        "my leg went numb after sitting cross-legged on the floor",
        "I fell off a horse when I was fifteen, it healed years ago",
        "I sneezed and leaked a bit of wee",
        "my mum had clots in her legs",
        "I'm bleeding money on physio",
        "Bleeding: stopped weeks ago",
        "nearly tripped on the kerb but caught myself, didn't fall",
        "heartburn, a burning up behind my breastbone into my throat",
        "the odd Braxton Hicks, irregular and painless",
        "the saddle area feels numb only after sitting on the hard bench, then fine",
        "my hips have chosen now to fall apart, the outer one aches",
        "I can't walk past a bakery without buying something",
        "blood everywhere this morning, my third nosebleed this week",
        "day 5, my chest is agony, both boobs rock hard now the milk is in",
        "Chest is fine, heart isn't racing, I only puff on the stairs with the bump",
        "sat on the loo for ages on my phone and my bum went numb, fine after a minute",
        "I leak a bit when I sneeze or cough, been the same since my first",
        "my son is 6 weeks old. Bleeding stopped last week, no fever",
        "my eldest slipped off the bottom step, he's fine, I wasn't the one who fell",
        "the baby's feet are jammed right up under my ribs all evening",
        "for the first few days after the gym I could barely walk, it eases now with rest",
        "a 9 when I roll over in bed, but once I'm settled on my side it fades to nothing",
    ],
)
def test_headers_similes_positions_and_settled_past_never_alarm(nlp, text):
    entities, _ = first_reply(nlp, text)
    assert not names(entities, "red_flags") and not names(entities, "pregnancy_red_flags")


def test_the_dev_part_stays_where_it_is(nlp):
    """A regression guard on the dev figures (make eval-real reports them)."""
    results = [real_eval.offline_reply(nlp, item, red_flag_signal.default()) for item in DEV]
    scores = real_eval.score(DEV, results)
    assert scores["fields"]["micro"]["f1"] >= 0.90, scores["fields"]["micro"]
    assert scores["stage_recall"] >= 0.95
    assert scores["without_red_flag"]["urgent"] <= 0.02
    assert scores["without_red_flag"]["confirming"] <= 0.10


# ------------------------------------------- 4. time, stage, places, impact, night


@pytest.mark.parametrize(
    "text,expected,absent",
    [
        ("my youngest is at university now and my hip still aches", {"stage": "postpartum"},
         ["weeks_of_pain"]),
        ("27wks4d and the side of my hip burns", {"stage": "pregnant", "weeks": 27}, []),
        ("I'm 30 weeks pregnant and my toddler is at nursery", {"stage": "pregnant",
         "weeks": 30}, []),
        ("pregnant with my second, my eldest is at school", {"stage": "pregnant"}, []),
        ("my little one is 6w3d old and my hip clicks", {"stage": "postpartum", "weeks": 6},
         []),
        ("31 weeks and huge, my bum hurts when I sit", {"stage": "pregnant", "weeks": 31}, []),
        ("seven months gone and my groin is sore", {"stage": "pregnant"}, []),
        ("it started around the 12-week scan and I'm 20 weeks now",
         {"stage": "pregnant", "weeks": 20, "weeks_of_pain": 8.0}, []),
        ("since having her 6 weeks ago my bum aches",
         {"stage": "postpartum", "weeks": 6, "weeks_of_pain": 6.0}, []),
        ("it hurts all down my outer thigh", {"locations": ["side"], "down_side_of_leg": True},
         []),
        ("I can't pick up my toddler or do the shopping", {"limits_daily_life": True}, []),
        ("I wake up every time I roll over", {"wakes_at_night": True}, []),
        # counting down to the due date, an antenatal appointment near, a bare week
        ("six weeks to go and my groin stabs when I stand", {"stage": "pregnant",
         "weeks": 34}, []),
        ("due in 4 weeks and my pubic bone aches", {"stage": "pregnant", "weeks": 36}, []),
        ("two weeks off my due date, both hips burn", {"stage": "pregnant", "weeks": 38},
         []),
        ("my 28 week appointment is tomorrow, my hip clicks", {"stage": "pregnant",
         "weeks": 28}, []),
        ("just gone 31 weeks and my SI joint aches", {"weeks": 31}, []),
        ("6 weeks postpartum, 3 weeks left of my leave", {"weeks": 6}, []),
        # when it began: her baby's age then, or her weeks pregnant then
        ("14 weeks since she came along, it started when she was about 3 weeks old",
         {"stage": "postpartum", "weeks": 14, "weeks_of_pain": 11.0}, []),
        ("sciatica since I was about 22 weeks, I've just hit 26",
         {"weeks": 26, "weeks_of_pain": 4.0}, []),
        ("since around week 16 (I'm 25 now) my bum aches", {"weeks": 25,
         "weeks_of_pain": 9.0}, []),
        ("been like it bout 10 days", {"weeks_of_pain": 1.43}, []),
        # what she can no longer do, said as a story
        ("I can't take my son to the park on my own any more", {"limits_daily_life": True},
         []),
        ("I've had to stop walking the dog", {"limits_daily_life": True}, []),
        ("my husband has taken over bedtimes", {"limits_daily_life": True}, []),
        # after the birth said only in passing (dev-468..507)
        ("Matilda is 9 weeks and my tailbone still aches", {"stage": "postpartum",
         "weeks": 9}, []),
        ("6wpp, my outer hip aches after a walk", {"stage": "postpartum", "weeks": 6}, []),
        ("FTM of a 4mo, my left hip aches from carrying", {"stage": "postpartum",
         "weeks": 17}, []),
        ("her first jabs were on Monday and my groin is sharp", {"stage": "postpartum"},
         []),
        ("my pubic bone is sore on the stairs. 31 weeks", {"stage": "pregnant",
         "weeks": 31}, []),
        ("I had SPD from about five months along right to the end. Everyone said it would "
         "go once she arrived; it still burns at the front", {"stage": "postpartum"},
         ["weeks"]),
        ("she was born at 38 weeks and now I'm 20 weeks pregnant again, my groin hurts",
         {"stage": "pregnant", "weeks": 20}, []),
    ],
)  # fmt: skip
def test_time_stage_places_impact_and_night(nlp, text, expected, absent):
    _, updates = first_reply(nlp, text)
    for field, value in expected.items():
        got = updates.get(field)
        assert got == value or (isinstance(value, list) and set(value) <= set(got or [])), (
            field, got, updates,
        )  # fmt: skip
    for field in absent:
        assert updates.get(field) is None, (field, updates)


def test_weeks_with_no_birth_mean_pregnant_and_are_confirmed_once(nlp):
    _, updates = first_reply(nlp, "26 weeks and my hip is sore")
    assert updates["stage"] == "pregnant" and "stage" in updates[interview.INFERRED]
    slots = {**updates}
    _, answer = first_reply(nlp, "yes", slots, requested="stage")
    assert "stage" not in (answer.get(interview.INFERRED) or [])


# ----------------------------------------------------------------- 5. side questions


@pytest.mark.parametrize(
    "text,topic,not_set",
    [
        ("Would a labral tear alter any of this?", "ask_labral_tear", "labral_tear"),
        ("actually, can I still go running?", "ask_running", "returning_to_sport"),
        ("do I need surgery?", "ask_surgery", None),
        ("how long will this take to get better?", "ask_how_long", "improving"),
    ],
)
def test_a_side_question_is_a_question_even_with_a_correction_word(nlp, text, topic, not_set):
    entities, updates = first_reply(nlp, text)
    assert names(entities, extractor.QUESTION_ENTITY) == {topic}
    if not_set:
        assert not_set not in updates, "nothing is inferred from a side question"


# ------------------------------------------- 6. ask whatever can change the outcome


@pytest.mark.parametrize(
    "case,asked,not_asked",
    [
        ({"red_flags": [], "stage": "postpartum", "locations": ["side"]}, ["unstable", "tight"],
         []),
        ({"red_flags": [], "stage": "postpartum", "locations": ["back"], "unstable": False},
         [], ["tight"]),
        ({"red_flags": [], "stage": "pregnant", "locations": ["side"], "qualities": ["burning"],
          "wakes_at_night": True}, [], ["severity", "limits_daily_life", "labral_tear"]),
        ({"red_flags": [], "stage": "pregnant", "locations": ["side"], "weeks_of_pain": 1},
         [], ["exercising", "improving"]),
    ],
)  # fmt: skip
def test_questions_are_the_ones_an_answer_could_change(case, asked, not_asked):
    worth = set(worth_asking(case))
    assert set(asked) <= worth, worth
    assert not set(not_asked) & worth, worth


def test_a_confirming_question_is_answered_yes_no_or_not_sure():
    pending = {"pending_red_flags": ["fever:possible"], "red_flag_confirm": "fever"}
    yes = interview.updates_from_message(pending, [], "affirm", "yes", "red_flag_confirm")
    assert yes["red_flags"] == ["fever"] and yes["red_flag_confirm"] is None
    unsure = interview.updates_from_message(pending, [], "not_sure", "not sure", "red_flag_confirm")
    assert unsure["red_flags"] == ["fever"]
    no = interview.updates_from_message(pending, [], "deny", "no", "red_flag_confirm")
    assert no["ruled_out_red_flags"] == ["fever"] and "red_flags" not in no


def test_pregnancy_signs_are_read_against_her_stage():
    slots = {"stage": "postpartum", "pending_red_flags": ["reduced_baby_movements:clear"]}
    after_birth = interview.resolve_red_flags(slots)
    assert after_birth["updates"]["ruled_out_red_flags"] == ["reduced_baby_movements"]
    assert after_birth["ask"] is None and after_birth["due"] == []
    slots = {"stage": "pregnant", "pending_red_flags": ["reduced_baby_movements:clear"]}
    pregnant = interview.resolve_red_flags(slots)
    assert pregnant["due"] == ["reduced_baby_movements"]
    slots = {"pending_red_flags": ["reduced_baby_movements:clear"]}
    assert interview.resolve_red_flags(slots)["ask"] == "reduced_baby_movements"
