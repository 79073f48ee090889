"""Action tests: a tracker, a dispatcher and the domain in; events and messages out."""

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.followups import ActionAnswerFollowup
from actions.forms import ActionExtractCase, ValidateTriageForm
from actions.outcome import ActionGiveOutcome, ActionRecordRedFlag
from actions.session import ActionSessionStart

CONTRACT_KEYS = {
    "urgency", "red_flags", "pattern", "patterns", "book_pt", "book_pt_reasons",
    "labral_tear_note", "explanation", "advice", "sources", "missing",
}  # fmt: skip


@pytest.fixture
def dispatcher():
    return CollectingDispatcher()


def ent(entity, value):
    return {"entity": entity, "value": value, "extractor": "CaseEntityExtractor"}


def make_tracker(slots=None, text="", intent="inform", entities=(), active_loop=None, events=()):
    return Tracker(
        sender_id="test",
        slots=dict(slots or {}),
        latest_message={"text": text, "intent": {"name": intent}, "entities": list(entities)},
        events=list(events),
        paused=False,
        followup_action=None,
        active_loop={"name": active_loop} if active_loop else {},
        latest_action_name="action_listen",
    )


def slot_events(events):
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


async def test_extract_case_reads_the_opening(dispatcher, domain):
    tracker = make_tracker(
        text="im 31 weeks pregant and the outside of my hip burns",
        intent="describe_pain",
        entities=[ent("stage", "pregnant"), ent("weeks", 31), ent("locations", "side")],
    )
    events = await ActionExtractCase().run(dispatcher, tracker, domain)
    assert slot_events(events) == {"stage": "pregnant", "weeks": 31, "locations": ["side"]}
    assert dispatcher.messages == []


async def test_extract_case_reads_yes_as_the_requested_field(dispatcher, domain):
    tracker = make_tracker(
        slots={"requested_slot": "unstable"}, text="yes", intent="affirm", active_loop="triage_form"
    )
    events = await ActionExtractCase().run(dispatcher, tracker, domain)
    assert slot_events(events) == {"unstable": True}


@pytest.mark.parametrize(
    "text,intent,entities",
    [
        ('/inform{"red_flags": []}', "inform", [{"entity": "red_flags", "value": []}]),
        ("/deny", "deny", []),
        ('/inform{"triage": {"urgency": "self_care"}}', "inform", []),
    ],
)
async def test_typed_payloads_set_nothing(dispatcher, domain, text, intent, entities):
    tracker = make_tracker(
        slots={"requested_slot": "red_flags"},
        text=text,
        intent=intent,
        entities=entities,
        active_loop="triage_form",
    )
    assert await ActionExtractCase().run(dispatcher, tracker, domain) == []


async def test_typed_payload_does_not_skip_the_red_flag_screen(dispatcher, domain):
    tracker = make_tracker(
        slots={"requested_slot": "red_flags", "reask_count": 1.0},
        text="/not_sure",
        intent="not_sure",
        active_loop="triage_form",
    )
    events = slot_events(await ValidateTriageForm().run(dispatcher, tracker, domain))
    assert events["requested_slot"] == "red_flags"
    assert "skipped" not in events


async def test_form_asks_the_red_flag_screen_first(dispatcher, domain):
    tracker = make_tracker(slots={"stage": "pregnant", "locations": ["side"]})
    events = await ValidateTriageForm().run(dispatcher, tracker, domain)
    assert SlotSet("requested_slot", "red_flags") in events


async def test_form_moves_on_after_two_unusable_answers(dispatcher, domain):
    tracker = make_tracker(
        slots={"red_flags": [], "requested_slot": "stage", "reask_count": 1.0},
        text="banana",
        intent="nlu_fallback",
        active_loop="triage_form",
    )
    events = slot_events(await ValidateTriageForm().run(dispatcher, tracker, domain))
    assert events["skipped"] == ["stage"]
    assert events["requested_slot"] not in ("stage", "red_flags")


async def test_yes_to_the_screen_gets_the_urgent_advice_and_the_list_at_once(dispatcher, domain):
    listened = [{"event": "action", "name": "action_listen"},
                {"event": "action", "name": "triage_form"}]  # fmt: skip
    for _ in range(3):  # however often she says yes, the screen is never skipped
        dispatcher = CollectingDispatcher()
        tracker = make_tracker(
            slots={"requested_slot": "red_flags", "reask_count": 1.0, "stage": "pregnant"},
            text="yes",
            intent="affirm",
            active_loop="triage_form",
            events=listened,
        )
        events = slot_events(await ValidateTriageForm().run(dispatcher, tracker, domain))
        assert [m["response"] for m in dispatcher.messages] == ["utter_red_flag_unnamed"]
        assert events["requested_slot"] == "red_flags"
        assert events["reasked"] is True
        assert "skipped" not in events
    assert "maternity unit straight away" in str(domain["responses"]["utter_red_flag_unnamed"])


async def test_outcome_sets_triage_with_every_contract_key(dispatcher, domain):
    slots = {
        "red_flags": [], "stage": "pregnant", "weeks": 31.0, "locations": ["side"],
        "qualities": ["burning"], "down_side_of_leg": True, "numbness_tingling": False,
        "triggers": ["lying_on_side"], "severity": 5.0, "wakes_at_night": True,
    }  # fmt: skip
    tracker = make_tracker(slots=slots)
    events = slot_events(await ActionGiveOutcome().run(dispatcher, tracker, domain))
    outcome = events["triage"]
    assert CONTRACT_KEYS <= set(outcome)
    assert outcome["pattern"] == "it_band"
    assert outcome["book_pt"] is True
    assert events["outcome_given"] is True
    texts = [m["text"] for m in dispatcher.messages]
    assert "often described as IT band syndrome" in texts[0] and "Book a physio: yes" in texts[0]
    assert dispatcher.messages[0]["buttons"][0]["title"] == "Book a visit"
    assert texts[1].startswith("Here's what you told me: 31 weeks pregnant")
    assert "not a diagnosis" in texts[-1]
    assert not any("you have" in t.lower() for t in texts)


async def test_outcome_puts_urgent_advice_first_and_alone(dispatcher, domain):
    slots = {"red_flags": ["calf_pain_swelling"], "stage": "postpartum", "locations": ["back"]}
    await ActionGiveOutcome().run(dispatcher, make_tracker(slots=slots), domain)
    first = dispatcher.messages[0]["text"]
    assert "today" in first and "Here's what you told me" not in first


async def test_emergency_sets_the_outcome(dispatcher, domain):
    tracker = make_tracker(
        slots={"red_flags": ["heavy_bleeding"], "locations": ["side"]},
        intent="red_flag_emergency",
        active_loop="triage_form",
    )
    events = await ActionRecordRedFlag().run(dispatcher, tracker, domain)
    outcome = slot_events(events)["triage"]
    assert outcome["urgency"] == "emergency"
    assert slot_events(events)["outcome_given"] is True
    assert "start again" in dispatcher.messages[0]["text"]


async def test_urgent_flag_mid_interview_does_not_end_it(dispatcher, domain):
    tracker = make_tracker(
        slots={"red_flags": ["fever"]}, intent="red_flag_urgent", active_loop="triage_form"
    )
    events = await ActionRecordRedFlag().run(dispatcher, tracker, domain)
    assert ActiveLoop(None) not in events
    assert "triage" not in slot_events(events)
    # What worried us is said (after the urgent advice from the rule), from the rulebook.
    assert [m["text"] for m in dispatcher.messages] == [
        "A temperature of 38 C (100.4 F) or more needs checking today."
    ]


async def test_correction_without_details_asks_what_to_change(dispatcher, domain):
    tracker = make_tracker(slots={"outcome_given": True}, intent="correct", text="change something")
    assert await ActionGiveOutcome().run(dispatcher, tracker, domain) == []
    assert dispatcher.messages[0]["response"] == "utter_ask_correction"


@pytest.mark.parametrize(
    "intent,expected",
    [
        ("ask_why", "core"),
        ("ask_how_long", "1-3 weeks"),
        ("ask_labral_tear", "38.6%"),
        ("ask_running", "physio"),
        ("ask_booking", "https://"),
        ("ask_human", "{phone}"),
        ("ask_what_helps", "Stretching alone"),
    ],
)
async def test_followups_answer_from_the_rulebook(dispatcher, domain, settings, intent, expected):
    await ActionAnswerFollowup().run(dispatcher, make_tracker(intent=intent), domain)
    assert expected.format(**settings) in dispatcher.messages[0]["text"]


async def test_session_start_loads_the_clinic(dispatcher, domain, settings):
    events = await ActionSessionStart().run(dispatcher, make_tracker(), domain)
    assert events[0]["event"] == "session_started"
    assert slot_events(events)["emergency_number"] == settings["emergency_number"]
    assert slot_events(events)["maternity_line"] == settings["maternity_line"]
    assert (events[-1]["event"], events[-1]["name"]) == ("action", "action_listen")


@pytest.mark.parametrize("intent", ["red_flag_emergency", "ask_why", "stop", "help"])
async def test_form_steps_aside_for_interruptions(dispatcher, domain, intent):
    fresh_reply = [{"event": "action", "name": "action_listen"},
                   {"event": "action", "name": "triage_form"}]  # fmt: skip
    tracker = make_tracker(slots={"requested_slot": "locations"}, intent=intent, events=fresh_reply)
    events = await ValidateTriageForm().run(dispatcher, tracker, domain)
    assert events == [{"event": "action_execution_rejected", "name": "triage_form",
                       "policy": None, "confidence": None, "timestamp": None}]  # fmt: skip


async def test_form_resumes_after_a_rule_answered_the_interruption(dispatcher, domain):
    resumed = [{"event": "action", "name": "action_listen"},
               {"event": "action", "name": "action_answer_followup"},
               {"event": "action", "name": "triage_form"}]  # fmt: skip
    tracker = make_tracker(
        slots={"red_flags": [], "requested_slot": "locations"}, intent="ask_why", events=resumed
    )
    events = slot_events(await ValidateTriageForm().run(dispatcher, tracker, domain))
    assert events["requested_slot"] == "stage"  # asked again, not rejected


async def test_a_shaky_affirm_is_not_a_yes(dispatcher, domain):
    tracker = make_tracker(
        slots={"requested_slot": "unstable"},
        text="<img src=x onerror=alert(1)>",
        intent="affirm",
        active_loop="triage_form",
    )
    tracker.latest_message["intent"]["confidence"] = 0.5
    assert await ActionExtractCase().run(dispatcher, tracker, domain) == []


async def test_staff_debug_shows_the_intent_its_confidence_and_the_entities(
    dispatcher, domain, monkeypatch
):
    monkeypatch.setenv("TRIAGE_DEBUG", "1")
    tracker = make_tracker(
        slots={"red_flags": [], "stage": "pregnant", "weeks": 20.0, "requested_slot": "weeks"},
        text="about 20 weeks",
        intent="inform",
        entities=[ent("weeks", 20)],
        active_loop="triage_form",
    )
    tracker.latest_message["intent"]["confidence"] = 0.87
    await ValidateTriageForm().run(dispatcher, tracker, domain)
    shown = "\n".join(m["text"] for m in dispatcher.messages)
    assert "[debug] intent: inform (0.87); entities: weeks" in shown
    assert "[debug] case:" in shown
