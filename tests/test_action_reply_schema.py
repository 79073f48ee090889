"""The compiled action-reply check accepts and rejects exactly what Rasa's own does."""

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction

from components import action_reply_schema

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


def test_the_component_installs_the_check_when_created_and_leaves_messages_alone(stock_check):
    component = action_reply_schema.ActionReplySchemaOnce.create({}, None, None, None)
    assert RemoteAction._validate_action_result is action_reply_schema.validate_action_result
    messages = [object()]
    assert component.process(messages) is messages
