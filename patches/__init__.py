"""Every patch of Rasa's internals, in one place (checked against Rasa 3.6.21).

Rasa 3.6 has no hook for what these do, so each replaces one internal function. They
are installed by :func:`install`, from one place: the ``components.rasa_patches.
RasaPatches`` entry of config.yml's pipeline, when a model is loaded (``rasa run``,
``rasa shell``, ``rasa test``, and the make verbs that wrap them). Each module says
what it replaces and why; :data:`PATCHES` lists them. A Rasa upgrade must re-check
each one (tests/test_patches.py fails if a patched function's signature changes).

- ``degraded_mode``: ``Agent.handle_message`` and ``RemoteAction.run``: the message
  guard, and the apology, timeouts and red-flag salvage when the action server fails.
- ``action_reply_schema``: ``RemoteAction._validate_action_result``: the reply schema
  compiled once (it was 63% of a turn's CPU), each event checked by its name.
- ``action_request``: ``RemoteAction._action_call_format``: the action server is sent
  the events of the last three turns, not the whole conversation (flat turn cost).
- ``policy_states``: ``Policy._prediction_states``, ``Domain.states_for_tracker_history``
  and ``DialogueStateTracker.applied_events``: the rule and memoization policies get
  their last states from a memo per conversation instead of a replay of the whole
  conversation per prediction; applied events fold in only new events.
- ``tracker_store``: ``FailSafeTrackerStore.on_tracker_store_error`` and
  ``on_tracker_store_retrieve_error``: no silent switch to memory when the database fails.
- ``lock_heartbeat``: ``LockStore.lock`` and ``RedisLockStore.issue_ticket``,
  ``finish_serving``, ``update_lock``: short conversation-lock tickets renewed while
  their turn runs (a dead server's lock lapses in seconds), each change atomic in Redis.
- ``event_types``: ``Event.resolve_by_type``: an event's class found by its name in a
  table built once, not by a walk of every subclass of ``Event`` for every event read.
- ``endpoint_pool``: ``EndpointConfig.request``: with ``pool_connections: true`` (opt-in,
  off in the shipped files), calls reuse kept-alive connections of one session per loop.
- ``data_files``: ``rasa.shared.data._find_data_files_in_directory``: plain ``rasa test``
  skips the virtualenv (Rasa's own example test stories) and other hidden folders.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

CHECKED_WITH = "rasa==3.6.21"


@dataclass(frozen=True)
class Patch:
    """One patch: its module in this package and the Rasa functions it replaces."""

    name: str
    replaces: tuple[str, ...]
    why: str


PATCHES = (
    Patch(
        "degraded_mode",
        ("rasa.core.agent.Agent.handle_message", "rasa.core.actions.action.RemoteAction.run"),
        "message guard; apology, timeouts and red-flag salvage when the action server fails",
    ),
    Patch(
        "action_reply_schema",
        ("rasa.core.actions.action.RemoteAction._validate_action_result",),
        "the action-reply schema compiled once instead of on every call",
    ),
    Patch(
        "action_request",
        ("rasa.core.actions.action.RemoteAction._action_call_format",),
        "the action server is sent the recent turns' events, not every event",
    ),
    Patch(
        "policy_states",
        (
            "rasa.core.policies.policy.Policy._prediction_states",
            "rasa.shared.core.domain.Domain.states_for_tracker_history",
            "rasa.shared.core.trackers.DialogueStateTracker.applied_events",
        ),
        "the rule and memoization policies' last states, replayed once, not every time",
    ),
    Patch(
        "tracker_store",
        (
            "rasa.core.tracker_store.FailSafeTrackerStore.on_tracker_store_error",
            "rasa.core.tracker_store.FailSafeTrackerStore.on_tracker_store_retrieve_error",
        ),
        "no silent switch to an in-memory store when the database fails",
    ),
    Patch(
        "lock_heartbeat",
        (
            "rasa.core.lock_store.LockStore.lock",
            "rasa.core.lock_store.RedisLockStore.issue_ticket",
            "rasa.core.lock_store.RedisLockStore.finish_serving",
            "rasa.core.lock_store.RedisLockStore.update_lock",
        ),
        "a dead server's conversation lock lapses in seconds; no lost tickets in Redis",
    ),
    Patch(
        "event_types",
        ("rasa.shared.core.events.Event.resolve_by_type",),
        "an event's class looked up by its name in a table, not a walk of every subclass",
    ),
    Patch(
        "endpoint_pool",
        ("rasa.utils.endpoints.EndpointConfig.request",),
        "endpoint calls on pooled keep-alive connections, not a new connection per call",
    ),
    Patch(
        "data_files",
        ("rasa.shared.data._find_data_files_in_directory",),
        "plain `rasa test` finds only the project's test stories, not the virtualenv's",
    ),
)
_INSTALLED: list[str] = []


def install(disable: Iterable[str] = ()) -> list[str]:
    """Installs every patch not in `disable` (idempotent); returns the installed names.

    Raises:
        ValueError: `disable` names a patch that does not exist.
    """
    skip = set(disable)
    unknown = skip - {patch.name for patch in PATCHES}
    if unknown:
        raise ValueError(f"unknown patch(es) to disable: {', '.join(sorted(unknown))}")
    for patch in PATCHES:
        if patch.name in skip or patch.name in _INSTALLED:
            continue
        importlib.import_module(f"{__name__}.{patch.name}").install()
        _INSTALLED.append(patch.name)
    if _INSTALLED:
        logger.debug("Rasa patches installed: %s", ", ".join(_INSTALLED))
    return list(_INSTALLED)


def installed() -> list[str]:
    """The names of the patches installed in this process."""
    return list(_INSTALLED)
