"""The rule and memoization policies see the recent states, computed once each.

Patches `Policy._prediction_states`, `Domain.states_for_tracker_history` and
`DialogueStateTracker.applied_events` (checked against Rasa 3.6.21).

For every prediction (several per turn), Rasa 3.6 replays the whole conversation
from its first event and builds a state for every action in it, though the rule
policy only compares the last states with its rules (a rule of n states looks at no
more than the last n) and the memoization policy keeps only its last `max_history`
states. In a long conversation this was 42% of a turn's CPU and grew with every
turn (issue 16, bench/results).

While `RulePolicy` or `MemoizationPolicy` (those classes exactly) predicts for a live
conversation, `states_for_tracker_history` returns only the last `window` states:
the longest rule plus one, or `max_history`. They come from a memo per conversation
that keeps the replayed tracker, the states so far and checkpoints: new events are
replayed once; when Rasa's applied events change behind the memo (a form collapsing
its turns, an undo, a restart), it goes back to the last checkpoint before the
change, or starts afresh. The states returned are deep copies (the featurizer edits
the last one). `applied_events` (also called twice a turn by the session check) folds
in only new events, per conversation. Anything else (training, other policies, story
trackers) gets Rasa's own full computation. tests/integration/test_policy_states.py
checks both against Rasa's own at every step of real conversations.
"""

from __future__ import annotations

import contextvars
import copy
import functools
import itertools
import json
import operator
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Dict, List

from rasa.core.policies.memoization import MemoizationPolicy
from rasa.core.policies.policy import Policy
from rasa.core.policies.rule_policy import RULES, RULES_FOR_LOOP_UNHAPPY_PATH, RulePolicy
from rasa.shared.core.constants import ACTION_UNLIKELY_INTENT_NAME, PREVIOUS_ACTION
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionReverted,
    ActiveLoop,
    Restarted,
    SessionStarted,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

MEMO_SIZE = 512
CHECKPOINTS = 64
_WINDOW: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "clinic_states_window", default=None
)


@dataclass
class _Point:
    index: int  # applied events before it
    replay: DialogueStateTracker
    last_ml: Any
    hidden: bool
    n_states: int


@dataclass
class _Memo:
    domain: Domain
    replay: DialogueStateTracker
    applied: List[Any] = field(default_factory=list)
    states: List[Dict] = field(default_factory=list)
    last_ml: Any = None
    hidden: bool = False
    points: deque = field(default_factory=lambda: deque(maxlen=CHECKPOINTS))


@dataclass
class _Fold:
    raw: List[Any] = field(default_factory=list)  # the tracker's events folded so far
    loop_names: frozenset = frozenset()
    applied: List[Any] = field(default_factory=list)


def _light_copy(tracker: DialogueStateTracker) -> DialogueStateTracker:
    from store.cache import clone

    return clone(tracker)


def _fresh(domain: Domain, tracker: DialogueStateTracker) -> _Memo:
    replay = tracker.init_copy()
    replay.events = deque(maxlen=1)  # applying applied events never reads earlier ones
    return _Memo(domain, replay)


class StatesMemo:
    """Per conversation and flags, the replay of its applied events so far."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self.size = size
        self._memos: OrderedDict[Any, _Memo] = OrderedDict()

    def clear(self) -> None:
        """Forgets every conversation."""
        self._memos.clear()

    def last_states(
        self, domain: Domain, tracker: DialogueStateTracker, window: int,
        omit_unset_slots: bool, ignore_rule_only_turns: bool,
        rule_only_data: Dict[str, Any] | None,
    ) -> List[Dict] | None:  # fmt: skip
        """Rasa's last `window` states of `tracker`; None if Rasa must compute them."""
        key = (
            tracker.sender_id, omit_unset_slots, ignore_rule_only_turns,
            json.dumps(rule_only_data, sort_keys=True, default=str),
        )  # fmt: skip
        memo = self._memos.get(key)
        if memo is None or memo.domain is not domain:
            memo = _fresh(domain, tracker)
        else:
            self._memos.move_to_end(key)
        applied = tracker.applied_events()
        memo = self._rewind(memo, applied, domain, tracker)
        flags = (omit_unset_slots, ignore_rule_only_turns, rule_only_data)
        for index in range(len(memo.applied), len(applied)):
            event = applied[index]
            if isinstance(event, ActionExecuted):
                memo.points.append(
                    _Point(index, _light_copy(memo.replay), memo.last_ml, memo.hidden,
                           len(memo.states))
                )  # fmt: skip
                _step(memo, domain, event.hide_rule_turn, *flags)
            memo.replay.update(event)
        memo.applied = list(applied)
        self._memos[key] = memo
        while len(self._memos) > self.size:
            self._memos.popitem(last=False)
        # The last state, after every event, as Rasa's final yield (not kept).
        tail = _Memo(domain, memo.replay, states=memo.states[-1:], last_ml=memo.last_ml,
                     hidden=memo.hidden)  # fmt: skip
        _step(tail, domain, False, *flags)
        states = (memo.states + tail.states[1 if memo.states else 0 :])[-window:]
        if any((s.get(PREVIOUS_ACTION) or {}).get("action_name") == ACTION_UNLIKELY_INTENT_NAME
               for s in states):  # fmt: skip
            return None  # the featurizer drops those before slicing: let Rasa count
        return copy.deepcopy(states)

    @staticmethod
    def _rewind(
        memo: _Memo, applied: List[Any], domain: Domain, tracker: DialogueStateTracker
    ) -> _Memo:
        known = memo.applied
        if len(applied) >= len(known) and all(map(operator.is_, applied, known)):
            return memo
        pairs = enumerate(zip(applied, known, strict=False))
        same = next((i for i, (a, b) in pairs if a is not b), min(len(applied), len(known)))
        while memo.points and memo.points[-1].index > same:
            memo.points.pop()
        if not memo.points:
            return _fresh(domain, tracker)
        point = memo.points.pop()
        memo.replay = _light_copy(point.replay)
        memo.last_ml, memo.hidden = point.last_ml, point.hidden
        del memo.states[point.n_states :]
        memo.applied = known[: point.index]
        return memo


class AppliedEvents:
    """`tracker.applied_events()` per conversation, folding in only new events.

    Rasa's loop over the events is a fold: the applied events so far, and each next
    event. It depends on the whole conversation only through the names of the loops
    it ever activates; while the events so far are the very same objects and new
    events bring no new loop name, folding the new events into the last result is
    the same as folding them all.
    """

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self.size = size
        self._folds: OrderedDict[str, _Fold] = OrderedDict()

    def clear(self) -> None:
        """Forgets every conversation."""
        self._folds.clear()

    def of(self, tracker: DialogueStateTracker, original: Any) -> List[Any]:
        """The applied events of a live tracker (a new list, as Rasa's)."""
        fold = self._folds.get(tracker.sender_id)
        events = tracker.events
        known = len(fold.raw) if fold else 0
        new = list(itertools.islice(events, known, None))
        names = frozenset(e.name for e in new if isinstance(e, ActiveLoop) and e.name)
        if (
            fold is None
            or not known
            or len(events) < known
            or not names <= fold.loop_names
            or not all(map(operator.is_, events, fold.raw))
        ):
            loops = frozenset(e.name for e in events if isinstance(e, ActiveLoop) and e.name)
            fold = _Fold(list(events), loops, original(tracker))
        else:
            fold.applied = _fold(tracker, fold.applied, new, fold.loop_names)
            fold.raw.extend(new)
        self._folds[tracker.sender_id] = fold
        self._folds.move_to_end(tracker.sender_id)
        while len(self._folds) > self.size:
            self._folds.popitem(last=False)
        return list(fold.applied)


def _fold(
    tracker: DialogueStateTracker, applied: List[Any], new: List[Any], loop_names: frozenset
) -> List[Any]:
    """Rasa's `applied_events` loop body, continued over `new` events."""
    applied = list(applied)
    for event in new:
        if isinstance(event, (Restarted, SessionStarted)):
            applied = []
        elif isinstance(event, ActionReverted):
            tracker._undo_till_previous(ActionExecuted, applied)
        elif isinstance(event, UserUtteranceReverted):
            tracker._undo_till_previous(UserUttered, applied)
            tracker._undo_till_previous(ActionExecuted, applied)
        elif (
            isinstance(event, ActionExecuted)
            and event.action_name in loop_names
            and not tracker._first_loop_execution_or_unhappy_path(event.action_name, applied)
        ):
            tracker._undo_till_previous_loop_execution(event.action_name, applied)
        else:
            applied.append(event)
    return applied


def _step(
    memo: _Memo, domain: Domain, hide_rule_turn: bool, omit_unset_slots: bool,
    ignore_rule_only_turns: bool, rule_only_data: Dict[str, Any] | None,
) -> None:  # fmt: skip
    """One yield of Rasa's `states_for_tracker_history` loop, on the memo's replay."""
    tr = memo.replay
    if ignore_rule_only_turns:
        if not memo.hidden:
            memo.last_ml = domain._get_prev_action_sub_state(tr)
        if not tr.followup_action and not tr.latest_action_name == tr.active_loop_name:
            memo.hidden = hide_rule_turn
        if memo.hidden:
            return
    state = domain.get_active_state(tr, omit_unset_slots=omit_unset_slots)
    if ignore_rule_only_turns:
        domain._remove_rule_only_features(state, rule_only_data)
        if memo.states:
            domain._substitute_rule_only_user_input(state, memo.states[-1])
        if memo.last_ml:
            state[PREVIOUS_ACTION] = memo.last_ml
    memo.states.append(domain._clean_state(state))


MEMO = StatesMemo()
APPLIED = AppliedEvents()


def window(policy: Policy) -> int | None:
    """How many of the last states this policy's prediction depends on (None: all)."""
    if type(policy) is MemoizationPolicy:
        return policy.featurizer.max_history if policy.featurizer else None
    if type(policy) is RulePolicy:
        cached = policy.__dict__.get("_clinic_states_window")
        if cached is None:
            keys = list(policy.lookup.get(RULES, {})) + list(
                policy.lookup.get(RULES_FOR_LOOP_UNHAPPY_PATH, {})
            )
            cached = max((len(json.loads(k)) for k in keys), default=0) + 1
            policy.__dict__["_clinic_states_window"] = cached
        return cached
    return None


def _live(tracker: Any) -> bool:
    return type(tracker) is DialogueStateTracker and not tracker.is_rule_tracker


def install() -> None:
    """Installs the windowed states for the rule and memoization policies (idempotent)."""
    original_prediction = Policy._prediction_states
    original_history = Domain.states_for_tracker_history
    if getattr(original_history, "clinic_windowed", False):
        return

    @functools.wraps(original_prediction)
    def _prediction_states(self: Policy, tracker: Any, domain: Domain, *args: Any, **kw: Any):
        size = window(self) if _live(tracker) else None
        if size is None:
            return original_prediction(self, tracker, domain, *args, **kw)
        token = _WINDOW.set(size)
        try:
            return original_prediction(self, tracker, domain, *args, **kw)
        finally:
            _WINDOW.reset(token)

    @functools.wraps(original_history)
    def states_for_tracker_history(
        self: Domain, tracker: Any, omit_unset_slots: bool = False,
        ignore_rule_only_turns: bool = False, rule_only_data: Dict | None = None,
    ) -> List[Dict]:  # fmt: skip
        size = _WINDOW.get()
        if size is not None and _live(tracker):
            states = MEMO.last_states(
                self, tracker, size, omit_unset_slots, ignore_rule_only_turns, rule_only_data
            )
            if states is not None:
                return states
        return original_history(
            self, tracker, omit_unset_slots, ignore_rule_only_turns, rule_only_data
        )

    original_applied = DialogueStateTracker.applied_events

    @functools.wraps(original_applied)
    def applied_events(self: DialogueStateTracker) -> List[Any]:
        if _live(self):
            return APPLIED.of(self, original_applied)
        return original_applied(self)

    states_for_tracker_history.clinic_windowed = True  # type: ignore[attr-defined]
    DialogueStateTracker.applied_events = applied_events  # type: ignore[method-assign]
    Policy._prediction_states = _prediction_states  # type: ignore[method-assign]
    Domain.states_for_tracker_history = states_for_tracker_history  # type: ignore[method-assign]
