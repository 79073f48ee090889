"""The patches of Rasa internals: one registry, installed from one place, and the
compiled action-reply check accepts and rejects exactly what Rasa's own does."""

import datetime
import importlib
import inspect
import re
from pathlib import Path

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction

import patches
from components.rasa_patches import RasaPatches
from patches import action_reply_schema

ROOT = Path(__file__).resolve().parents[1]

# The parameters of every patched Rasa function, as checked against Rasa 3.6.21.
SIGNATURES = {
    "rasa.core.agent.Agent.handle_message": ["self", "message"],
    "rasa.core.actions.action.RemoteAction.run": [
        "self", "output_channel", "nlg", "tracker", "domain",
    ],
    "rasa.core.actions.action.RemoteAction._validate_action_result": ["self", "result"],
    "rasa.core.actions.action.RemoteAction._action_call_format": ["self", "tracker", "domain"],
    "rasa.core.policies.policy.Policy._prediction_states": [
        "self", "tracker", "domain", "use_text_for_last_user_input", "rule_only_data",
    ],
    "rasa.shared.core.domain.Domain.states_for_tracker_history": [
        "self", "tracker", "omit_unset_slots", "ignore_rule_only_turns", "rule_only_data",
    ],
    "rasa.shared.core.trackers.DialogueStateTracker.applied_events": ["self"],
    "rasa.core.tracker_store.FailSafeTrackerStore.on_tracker_store_error": ["self", "error"],
    "rasa.core.tracker_store.FailSafeTrackerStore.on_tracker_store_retrieve_error": [
        "self", "error",
    ],
    "rasa.shared.data._find_data_files_in_directory": ["directory", "filter_property"],
    "rasa.shared.core.events.Event.resolve_by_type": ["type_name", "default"],
    "rasa.utils.endpoints.EndpointConfig.request": [
        "self", "method", "subpath", "content_type", "compress", "kwargs",
    ],
    "rasa.core.lock_store.LockStore.lock": [
        "self", "conversation_id", "lock_lifetime", "wait_time_in_seconds",
    ],
    "rasa.core.lock_store.RedisLockStore.issue_ticket": [
        "self", "conversation_id", "lock_lifetime",
    ],
    "rasa.core.lock_store.RedisLockStore.finish_serving": [
        "self", "conversation_id", "ticket_number",
    ],
    "rasa.core.lock_store.RedisLockStore.update_lock": ["self", "conversation_id"],
}  # fmt: skip

GOOD = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "triage", "value": {"urgency": "routine"}}]},
    {"events": [{"event": "action_execution_rejected", "name": "triage_form"}], "responses": []},
]
BAD = [
    {"events": [{"name": "no event key"}]},
    {"events": [{"event": "slot", "timestamp": "yesterday"}]},
    {"events": "not a list"},
]


@pytest.fixture()
def stock_check():
    original = RemoteAction._validate_action_result
    yield original
    RemoteAction._validate_action_result = original


@pytest.mark.parametrize("reply", GOOD)
def test_valid_replies_pass_both_checks(stock_check, reply):
    action = RemoteAction("action_give_outcome", None)
    assert stock_check(action, reply) is True
    action_reply_schema.install()
    assert action._validate_action_result(reply) is True


@pytest.mark.parametrize("reply", BAD)
def test_invalid_replies_fail_both_checks_with_the_same_message(stock_check, reply):
    action = RemoteAction("action_give_outcome", None)
    with pytest.raises(jsonschema.ValidationError) as stock:
        stock_check(action, reply)
    action_reply_schema.install()
    with pytest.raises(jsonschema.ValidationError) as ours:
        action._validate_action_result(reply)
    assert ours.value.message == stock.value.message
    assert "Failed to validate Action server response" in ours.value.message


def _replies():
    """Every Rasa event as a reply of one, and each with one field broken or missing."""
    from rasa.shared.core import events as ev

    samples = [
        ev.UserUttered("hi", {"name": "greet", "confidence": 0.9}, [], input_channel="rest"),
        ev.BotUttered("hello", {"buttons": [{"title": "Yes", "payload": "/affirm"}]}),
        ev.SlotSet("weeks", 30), ev.ActionExecuted("action_listen"), ev.Restarted(),
        ev.UserUtteranceReverted(), ev.AllSlotsReset(), ev.ActionReverted(),
        ev.ConversationPaused(), ev.ConversationResumed(), ev.FollowupAction("utter_greet"),
        ev.ActiveLoop("triage_form"), ev.LoopInterrupted(True), ev.SessionStarted(),
        ev.ActionExecutionRejected("triage_form"), ev.EntitiesAdded([{"entity": "a"}]),
        ev.DefinePrevUserUtteredFeaturization(False), ev.AgentUttered("x"),
        ev.ReminderScheduled("remind", datetime.datetime(2030, 1, 1)),
        ev.ReminderCancelled("remind"), ev.StoryExported("path"),
    ]  # fmt: skip
    broken = [12345, None, "text", [1], {"a": 1}, True]
    for event in samples:
        data = event.as_dict()
        yield {"events": [data], "responses": []}
        for key in data:
            yield {"events": [{k: v for k, v in data.items() if k != key}]}
            for value in broken:
                yield {"events": [data, {**data, key: value}]}
    yield {"events": [{"event": "no_such_event"}]}
    yield {"events": [{"event": 7}]}
    yield {"events": None}
    yield {"responses": "no list"}
    yield "not an object"


def test_the_check_by_event_name_accepts_exactly_what_the_whole_schema_accepts():
    whole = action_reply_schema._validator()
    replies = list(_replies())
    verdicts = [(whole.is_valid(r), action_reply_schema.is_valid_reply(r)) for r in replies]
    assert len(replies) > 500
    assert sum(ours for _, ours in verdicts) > 50 and sum(not o for _, o in verdicts) > 50
    assert [i for i, (w, o) in enumerate(verdicts) if w != o] == []


def test_the_component_installs_the_check_when_created_and_leaves_messages_alone(stock_check):
    component = RasaPatches.create({}, None, None, None)
    assert RemoteAction._validate_action_result is action_reply_schema.validate_action_result
    messages = [object()]
    assert component.process(messages) is messages


def resolve(path: str):
    """The original Rasa function (a class's method, or a module's function)."""
    head, name = path.rsplit(".", 1)
    try:
        owner = importlib.import_module(head)
    except ModuleNotFoundError:
        module, cls = head.rsplit(".", 1)
        owner = getattr(importlib.import_module(module), cls)
    return inspect.unwrap(getattr(owner, name))


def test_every_patched_function_is_registered_and_keeps_its_signature():
    registered = {target for patch in patches.PATCHES for target in patch.replaces}
    assert registered == set(SIGNATURES)
    for target, params in SIGNATURES.items():
        assert list(inspect.signature(resolve(target)).parameters) == params, target


def test_each_patch_module_documents_what_it_replaces_and_the_version():
    for patch in patches.PATCHES:
        module = importlib.import_module(f"patches.{patch.name}")
        doc = module.__doc__ or ""
        assert "3.6.21" in doc, patch.name
        for target in patch.replaces:
            assert target.rsplit(".", 1)[-1] in doc, (patch.name, target)
        assert callable(module.install)


def test_install_is_idempotent_and_refuses_unknown_names():
    first = patches.install()
    assert patches.install() == first == patches.installed()
    with pytest.raises(ValueError, match="nosuch"):
        patches.install(["nosuch"])


def test_no_module_outside_patches_assigns_to_rasa_classes():
    """Monkey-patches of Rasa live only in patches/ (installed from config.yml)."""
    assigned = re.compile(r"^\s*(RemoteAction|Agent|FailSafeTrackerStore|\w+Input)\.\w+\s*=", re.M)
    setattr_rasa = re.compile(r"setattr\((RemoteAction|Agent|FailSafeTrackerStore)\b")
    for folder in ("actions", "channels", "components", "store", "triage", "scripts"):
        for source in (ROOT / folder).rglob("*.py"):
            text = source.read_text()
            assert not assigned.search(text) and not setattr_rasa.search(text), source
    config = (ROOT / "config.yml").read_text()
    assert "components.rasa_patches.RasaPatches" in config


def test_event_classes_found_by_name_are_rasas_own_and_misses_behave_as_rasas():
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    from patches import event_types

    expected = {}
    for cls in all_subclasses(Event):
        expected.setdefault(cls.type_name, cls)
    for name, cls in expected.items():
        assert event_types.resolve_by_type(name) is cls, name
    assert event_types.resolve_by_type("topic") is None
    assert event_types.resolve_by_type("nosuch", default=Event) is Event
    with pytest.raises(ValueError, match="nosuch"):
        event_types.resolve_by_type("nosuch")
    patches.install()
    assert Event.resolve_by_type("slot") is expected["slot"]
    assert Event.from_parameters({"event": "slot", "name": "stage", "value": "x"}).key == "stage"
