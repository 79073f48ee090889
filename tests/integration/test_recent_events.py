"""The action server gives the same answers when sent only the recent turns' events,
and without the domain (endpoints.yml: enable_selective_domain).

patches/action_request.py sends the action server the events of the last three turns
instead of the whole conversation. Real conversations are run on the shared servers
(whole interviews, questions after the outcome, a withdrawn erasure request); then,
at every point in them where a custom action ran, the action server's reply (events
and messages) is computed here twice, from Rasa's own request with every event and
from ours with the recent ones, and from what the shipped endpoint sends (the recent
ones, no domain): they must be the same.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig
from rasa_sdk.executor import ActionExecutor

from patches import action_request
from tests.support.dialogue import run_conversation
from tests.support.servers import ROOT

# The shipped action endpoint (endpoints.yml): the domain is left out of every call.
SHIPPED = EndpointConfig.from_dict(
    yaml.safe_load((ROOT / "endpoints.yml").read_text())["action_endpoint"]
)
DIALOGUES = yaml.safe_load((Path(__file__).parent / "dialogues.yml").read_text())["dialogues"]
AFTERWARDS = (
    "why does this happen?",
    "delete my data",
    "no",
    "how long will it take?",
    "would a labral tear change any of this?",
    "can I still run",
    "how do I book?",
)


def custom_action_calls(tracker: DialogueStateTracker, custom: set[str]):
    """(the tracker just before a custom action ran, its name), each time one ran."""
    prefix = tracker.init_copy()
    for event in tracker.events:
        if isinstance(event, ActionExecuted) and event.action_name in custom:
            yield (
                DialogueStateTracker.from_dict(
                    prefix.sender_id, [e.as_dict() for e in prefix.events], prefix.slots.values()
                ),
                event.action_name,
            )
        prefix.update(event)


@pytest.mark.parametrize("dialogue", DIALOGUES[:6], ids=[d["id"] for d in DIALOGUES[:6]])
def test_every_custom_action_answers_the_same_with_the_recent_events(servers, dialogue):
    sender, events = run_conversation(servers, dialogue, AFTERWARDS)
    domain = Domain.load(str(ROOT / "domain.yml"))
    tracker = DialogueStateTracker.from_dict(sender, events, domain.slots)
    executor = ActionExecutor()
    executor.register_package("actions")
    custom = set(executor.actions)
    calls, shortened, differences = 0, 0, []
    for before, name in custom_action_calls(tracker, custom):
        action = RemoteAction(name, None)
        whole = RemoteAction._action_call_format(action, before, domain)
        if getattr(RemoteAction._action_call_format, "__module__", "") == action_request.__name__:
            pytest.fail("the test process must build Rasa's own request, unpatched")
        recent = action_request.action_call_format(action, before, domain)
        assert {k: v for k, v in recent["tracker"].items() if k != "events"} == {
            k: v for k, v in whole["tracker"].items() if k != "events"
        }
        shortened += len(recent["tracker"]["events"]) < len(whole["tracker"]["events"])
        calls += 1
        answer = asyncio.run(executor.run(whole))
        # What the shipped endpoints.yml sends (enable_selective_domain): no domain.
        shipped = action_request.action_call_format(RemoteAction(name, SHIPPED), before, domain)
        assert "domain" not in shipped and "domain" in whole
        for request in (recent, shipped):
            if asyncio.run(executor.run(request)) != answer:
                differences.append((name, sum(isinstance(e, UserUttered) for e in before.events)))
    assert calls >= 5 and shortened >= 3, (calls, shortened)
    assert differences == []


def test_the_erasure_still_sees_that_she_was_asked_to_confirm(servers):
    """The one action that reads the turn before hers: "yes" to the erasure question."""
    afterwards = ("why does this happen?", "delete my data")
    sender, events = run_conversation(servers, DIALOGUES[0], afterwards)
    domain = Domain.load(str(ROOT / "domain.yml"))
    tracker = DialogueStateTracker.from_dict(sender, events, domain.slots)
    tracker.update(UserUttered("yes", {"name": "affirm", "confidence": 1.0}))
    executor = ActionExecutor()
    executor.register_package("actions")
    action = RemoteAction("action_erase_conversation", None)
    whole = asyncio.run(executor.run(RemoteAction._action_call_format(action, tracker, domain)))
    recent = asyncio.run(executor.run(action_request.action_call_format(action, tracker, domain)))
    assert {"event": "slot", "name": "erasure_confirmed", "value": True, "timestamp": None} in (
        whole["events"]
    )
    assert recent == whole
