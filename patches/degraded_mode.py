"""Degraded mode and the message guard.

Patches `Agent.handle_message` and `RemoteAction.run` (checked against Rasa 3.6.21;
Rasa has no hook for either).

Message guard, for every channel (channels/text.py): control characters and NUL bytes
are removed; text starting with "/" stays a payload only as exactly `/intent` or
`/intent{...}` of a domain intent, anything else is read without its leading slashes; an
empty message gets a short prompt and one over `MAX_MESSAGE_CHARS` a polite refusal,
neither stored nor run through the model (100 000 characters would hold the server's
only event loop for about 20 s).

A custom action whose connection to the action server was lost is sent once more
(aiohttp reuses keep-alive connections the action server may just have closed).

Degraded mode when a custom action fails (action server down, erroring, or slower than
`ACTION_SERVER_TIMEOUT` seconds, default 60; on a red-flag message the slot-mapping
action, which runs before the urgent advice, gets at most 5 s). Rasa itself then sends
nothing:

* the patient gets one short apology with the clinic's phone number, last in the turn
  (urgent advice from domain responses stays first);
* a failed `action_session_start` falls back to Rasa's default session start;
* when the slot-mapping action fails, red flags found by our extractor in her message
  are still added to the `red_flags` slot; a clear sign that only applies in pregnancy
  (the form would have decided from her stage) gets the emergency advice, unless she
  has had her baby;
* when the form's validation fails on a red-flag message, the form steps aside
  (rejection), so the red-flag rules still give the urgent advice (once they have, a
  second failure of the form just ends the turn);
* otherwise the failed action changes nothing, so when the action server is back she
  carries on where she was.

A message that cannot be handled at all (e.g. the tracker database is down: see
store/tracker_store.py) gets the same apology instead of silence. The apology is sent
to her channel, not recorded in the tracker. Logs carry no message text or slot values.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
from typing import Any, Dict, List, Mapping

import aiohttp
from rasa.core.actions.action import ActionExecutionRejection, ActionSessionStart, RemoteAction
from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from rasa.shared.exceptions import RasaException

from channels.text import EMPTY_PROMPT, MAX_MESSAGE_CHARS, TOO_LONG, as_read, clean_text
from triage import clinic

logger = logging.getLogger(__name__)

APOLOGY = (
    "Sorry, something went wrong on my side and I can't answer properly right now. "
    "Please try again in a few minutes, or call {clinic_name} on {clinic_phone}. If you "
    "feel very unwell or something seems wrong with you or your baby, call "
    "{emergency_number} or your maternity unit now."
)
SESSION_START = "action_session_start"
# Set by our NLU component (components/case_extractor.py) when a red flag is found.
RED_FLAG_INTENTS = frozenset({"red_flag_emergency", "red_flag_urgent"})
PREGNANCY_INTENT = "red_flag_pregnancy"
RED_FLAG_SLOT = "red_flags"
EXTRACTOR = "CaseEntityExtractor"
TIMEOUT_ENV = "ACTION_SERVER_TIMEOUT"
# Above the worst queueing delay under load (200 simultaneous interviews on 2 cores:
# 31 s at most), so a busy server is never mistaken for a failed action server.
DEFAULT_ACTION_TIMEOUT = 60.0
# Before the urgent advice of a red-flag message, the slot-mapping action gets this long.
RED_FLAG_EXTRACT_TIMEOUT = 5.0


class _Turn:
    """What went wrong in the turn being handled (one per handled message)."""

    def __init__(self) -> None:
        self.failed = False
        self.slots: Dict[str, Any] = {}
        self.pregnancy_sign = False  # a clear pregnancy-only sign, not after the birth


_TURN: contextvars.ContextVar[_Turn | None] = contextvars.ContextVar("clinic_turn", default=None)


def _clinic_values() -> Dict[str, str]:
    try:
        settings = clinic.settings()
        return {
            "clinic_name": settings["name"],
            "clinic_phone": settings["phone"],
            "emergency_number": settings["emergency_number"],
        }
    except Exception as error:  # clinic.yml missing or broken: still apologise
        logger.warning("Clinic settings unavailable for the apology: %s", type(error).__name__)
        return {}


def emergency_text() -> str:
    """The rulebook's emergency advice (domain.yml's utter_emergency is the same text)."""
    from triage import rulebook

    try:
        return clinic.fill(rulebook()["urgent_advice"]["emergency"]["text"].strip())
    except Exception as error:  # clinic.yml broken: the words without the clinic's numbers
        logger.warning("Clinic settings unavailable for the advice: %s", type(error).__name__)
        text = rulebook()["urgent_advice"]["emergency"]["text"].strip()
        for key, words in clinic.FALLBACK.items():
            text = text.replace("{" + key + "}", words)
        return text


def apology_text(slots: Mapping[str, Any] | None = None) -> str:
    """The apology, with the clinic's name and numbers from the slots or clinic.yml."""
    values = {**clinic.FALLBACK, **_clinic_values()}
    for key in clinic.FALLBACK:
        value = (slots or {}).get(key)
        if isinstance(value, str) and value.strip():
            values[key] = value
    return APOLOGY.format(**values)


async def _send(output_channel: Any, recipient_id: str, text: str) -> None:
    try:
        await output_channel.send_response(recipient_id, {"text": text})
    except Exception as error:
        logger.error("Could not send a message to the patient: %s", type(error).__name__)


def action_timeout() -> float:
    """Seconds a custom action may take before it counts as failed."""
    try:
        return max(float(os.environ.get(TIMEOUT_ENV, DEFAULT_ACTION_TIMEOUT)), 0.1)
    except ValueError:
        return DEFAULT_ACTION_TIMEOUT


def _slot_mapping_actions(domain: Any) -> set:
    names = set()
    for slot in getattr(domain, "slots", []) or []:
        for mapping in getattr(slot, "mappings", []) or []:
            if isinstance(mapping, dict) and mapping.get("action"):
                names.add(mapping["action"])
    return names


def _record_red_flags(tracker: Any) -> List[SlotSet]:
    """The red flags our extractor found in her message, added to the `red_flags` slot."""
    found = [
        entity.get("value")
        for entity in tracker.latest_message.entities or []
        if entity.get("entity") == RED_FLAG_SLOT
        and entity.get("extractor") == EXTRACTOR
        and isinstance(entity.get("value"), str)
    ]
    if not found or RED_FLAG_SLOT not in tracker.slots:
        return []
    old = tracker.get_slot(RED_FLAG_SLOT) or []
    merged = list(dict.fromkeys([*old, *found]))
    return [SlotSet(RED_FLAG_SLOT, merged)] if merged != old else []


def _connection_lost(error: BaseException) -> bool:
    cause = error.__cause__ or error.__context__
    return isinstance(cause, aiohttp.ClientConnectionError)


def _red_flag_turn(tracker: Any) -> bool:
    return (tracker.latest_message.intent or {}).get("name") in RED_FLAG_INTENTS


def _answered(tracker: Any) -> bool:
    """True if a rule already answered her latest message (e.g. with urgent advice)."""
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            return False
        if isinstance(event, ActionExecuted) and (event.action_name or "").startswith("utter_"):
            return True
    return False


def _failure_kind(error: BaseException) -> str:
    """The kind of failure, never its text: an error reply's body is the whole tracker."""
    cause = error.__cause__ or error.__context__
    status = getattr(cause, "status", None) or getattr(error, "status", None)
    kind = type(cause if cause is not None else error).__name__
    return f"{kind} (HTTP {status})" if status else kind


def _failed(name: str, error: BaseException) -> RasaException:
    """Logs the failure without its text; the error to raise, with no cause attached.

    Rasa logs the raised error with its traceback, which would print the cause (a
    ClientResponseError carries the action server's reply: the conversation).
    """
    logger.error("Custom action '%s' failed: %s.", name, _failure_kind(error))
    failed = RasaException(f"Custom action '{name}' failed.")
    failed.__suppress_context__ = True
    return failed


async def _degraded(action: RemoteAction, error: Exception, args: tuple) -> List[Any]:
    """What a failed custom action does instead; raises to leave the tracker as it was."""
    output_channel, nlg, tracker, domain = args
    name = action.name()
    if name == SESSION_START:
        logger.error("Custom session start failed; using Rasa's default one.")
        return await ActionSessionStart().run(output_channel, nlg, tracker, domain)
    if name in _slot_mapping_actions(domain):
        # Runs before the turn's answer: only keep her red flags; the apology, if any,
        # comes with the next failure of the turn.
        turn = _TURN.get()
        intent = (tracker.latest_message.intent or {}).get("name")
        if turn is not None and intent == PREGNANCY_INTENT:
            # The form would have asked or decided from her stage: without it, the
            # emergency advice, unless she has had her baby.
            turn.pregnancy_sign = tracker.get_slot("stage") != "postpartum"
        recorded = _record_red_flags(tracker)
        if recorded:
            return recorded
        raise _failed(name, error)
    turn = _TURN.get()
    if turn is not None:
        turn.failed = True
        turn.slots = tracker.current_slot_values()
    if name.startswith("validate_") and _red_flag_turn(tracker) and not _answered(tracker):
        # The form cannot run: step aside so the red-flag rules give the urgent advice.
        _failed(name, error)
        raise ActionExecutionRejection(name, "action server unavailable") from None
    raise _failed(name, error)


def _patch_remote_action() -> None:
    original = RemoteAction.run
    if getattr(original, "clinic_degraded_mode", False):
        return

    @functools.wraps(original)
    async def run(self: RemoteAction, *args: Any) -> List[Any]:
        tracker, domain = args[2], args[3]
        timeout = action_timeout()
        if _red_flag_turn(tracker) and self.name() in _slot_mapping_actions(domain):
            # Runs before the urgent advice: never hold it up for long.
            timeout = min(timeout, RED_FLAG_EXTRACT_TIMEOUT)
        try:
            try:
                return await asyncio.wait_for(original(self, *args), timeout)
            except RasaException as error:
                if isinstance(error, ActionExecutionRejection) or not _connection_lost(error):
                    raise
                # A pooled connection the action server had just closed (keep-alive
                # race under load): the request never arrived, so send it once more.
                logger.warning("Retrying custom action '%s' on a new connection.", self.name())
                return await asyncio.wait_for(original(self, *args), timeout)
        except ActionExecutionRejection:
            raise
        except asyncio.TimeoutError as error:
            logger.error("Custom action '%s' took over %g s.", self.name(), timeout)
            return await _degraded(self, error, args)
        except (RasaException, OSError) as error:
            return await _degraded(self, error, args)

    run.clinic_degraded_mode = True  # type: ignore[attr-defined]
    RemoteAction.run = run  # type: ignore[method-assign]


def _patch_agent() -> None:
    original = Agent.handle_message
    if getattr(original, "clinic_degraded_mode", False):
        return

    @functools.wraps(original)
    async def handle_message(self: Agent, message: UserMessage) -> Any:
        collecting = isinstance(message.output_channel, CollectingOutputChannel)
        text = clean_text(message.text) if isinstance(message.text, str) else ""
        text = as_read(text, self.domain)
        refusal = None
        if len(text) > MAX_MESSAGE_CHARS:
            refusal = TOO_LONG
        elif not text.strip():
            refusal = EMPTY_PROMPT
        if refusal:
            await _send(message.output_channel, message.sender_id, refusal)
            return message.output_channel.messages if collecting else None
        message.text = text

        turn = _Turn()
        token = _TURN.set(turn)
        result = None
        try:
            result = await original(self, message)
        except Exception as error:
            logger.error(
                "A message could not be handled (%s); the patient gets the apology.",
                type(error).__name__,
            )
            turn.failed = True
        finally:
            _TURN.reset(token)
        if not turn.failed:
            return result
        if turn.pregnancy_sign:
            await _send(message.output_channel, message.sender_id, emergency_text())
        await _send(message.output_channel, message.sender_id, apology_text(turn.slots))
        return message.output_channel.messages if collecting else None

    handle_message.clinic_degraded_mode = True  # type: ignore[attr-defined]
    Agent.handle_message = handle_message  # type: ignore[method-assign]


def install() -> None:
    """Installs the message guard and the degraded mode (idempotent)."""
    _patch_remote_action()
    _patch_agent()
