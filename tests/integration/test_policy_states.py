"""The windowed states (patches/policy_states.py) are Rasa's own last states.

Real conversations are run on the shared servers: whole interviews (the form
collapses its turns in Rasa's applied events), questions after the outcome, a
withdrawn erasure, a restart of the interview. Then, for every prefix of each one
(every point at which a policy predicts), the memo's last states must equal the last
states of Rasa's own full computation, for the rule policy's flags and for the
memoization policy's (rule-only turns hidden, rule-only slots and loops removed):
prefixes in order (the memo replays only new events) and in a shuffled order (it
rewinds to a checkpoint or starts afresh).
"""

from __future__ import annotations

import operator
import random
from pathlib import Path

import pytest
import yaml
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted
from rasa.shared.core.trackers import DialogueStateTracker

from patches.policy_states import AppliedEvents, StatesMemo
from tests.support.dialogue import run_conversation
from tests.support.servers import ROOT

DIALOGUES = yaml.safe_load((Path(__file__).parent / "dialogues.yml").read_text())["dialogues"]
AFTERWARDS = ("why does this happen?", "delete my data", "no", "how long will it take?",
              "actually it started 5 weeks ago", "can I still run", "start over", "hi")  # fmt: skip
RULE_ONLY = {"rule_only_slots": ["requested_slot", "erasure_confirmed"],
             "rule_only_loops": ["triage_form"]}  # fmt: skip
FLAGS = [(False, False, None), (False, True, RULE_ONLY), (True, False, None)]
ORIGINAL = getattr(Domain.states_for_tracker_history, "__wrapped__",
                   Domain.states_for_tracker_history)  # fmt: skip
APPLIED = getattr(DialogueStateTracker.applied_events, "__wrapped__",
                  DialogueStateTracker.applied_events)  # fmt: skip


def prefixes(tracker: DialogueStateTracker) -> list[DialogueStateTracker]:
    """The tracker before each action (where a policy predicts) and at the end."""
    out, prefix = [], tracker.init_copy()
    for event in tracker.events:
        if isinstance(event, ActionExecuted):
            out.append(_copy(prefix))
        prefix.update(event)
    return out + [prefix]


def _copy(tracker: DialogueStateTracker) -> DialogueStateTracker:
    twin = tracker.init_copy()
    for event in tracker.events:  # the same event objects, as the tracker store hands out
        twin.update(event)
    return twin


@pytest.mark.parametrize("dialogue", DIALOGUES[:4], ids=[d["id"] for d in DIALOGUES[:4]])
def test_the_memos_last_states_are_rasas_last_states(servers, dialogue):
    sender, events = run_conversation(servers, dialogue, AFTERWARDS)
    domain = Domain.load(str(ROOT / "domain.yml"))
    steps = prefixes(DialogueStateTracker.from_dict(sender, events, domain.slots))
    assert len(steps) > 20
    shuffled = steps[:]
    random.Random(7).shuffle(shuffled)
    for order in (steps, shuffled):
        folds = AppliedEvents()
        for tracker in order:
            ours, theirs = folds.of(tracker, APPLIED), APPLIED(tracker)
            assert len(ours) == len(theirs) and all(map(operator.is_, ours, theirs))
    compared = 0
    for window in (4, 9):
        for omit, ignore, rule_only in FLAGS:
            for order in (steps, shuffled):
                memo = StatesMemo()
                for tracker in order:
                    ours = memo.last_states(domain, tracker, window, omit, ignore, rule_only)
                    theirs = ORIGINAL(domain, tracker, omit, ignore, rule_only)[-window:]
                    assert ours == theirs, (window, omit, ignore, len(tracker.events))
                    compared += 1
    assert compared > 12 * 20
