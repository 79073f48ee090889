"""The one scripted-interview driver, as the clinic's check does it.

A script opens with free text, then answers whatever `requested_slot` names, until the
`triage` slot holds the outcome; a field with no scripted answer gets "not sure". The
tests (sync, REST), the load test and the benchmark's load generator (async) and the
scale test (threads, with retries) all step through interviews with :class:`Script`.
"""

from __future__ import annotations

import uuid
from typing import Any, Awaitable, Callable, Mapping

MAX_TURNS = 30
NOT_SURE = "not sure"


class DialogueError(AssertionError):
    """The interview went wrong: no question and no outcome, or too many turns."""


class Script:
    """One scripted interview: the opening, then the answer to each question asked."""

    def __init__(self, opening: str, answers: Mapping[str, str], max_turns: int = MAX_TURNS):
        self.opening = opening
        self.answers = dict(answers)
        self.max_turns = max_turns
        self.asked: list[str] = []

    def next(self, slots: Mapping[str, Any]) -> str | None:
        """Her next message, given the slots after the last turn; None once it is over.

        Raises:
            DialogueError: there is neither an outcome nor a question, or the
                interview has gone on for more than `max_turns` questions.
        """
        if slots.get("triage"):
            return None
        requested = slots.get("requested_slot")
        if not requested:
            raise DialogueError(f"no outcome and no question after {self.asked}")
        if len(self.asked) >= self.max_turns:
            raise DialogueError(f"no outcome after {self.max_turns} turns; asked {self.asked}")
        self.asked.append(requested)
        return str(self.answers.get(requested, NOT_SURE))


def run_dialogue(
    servers: Any, sender: str, opening: str, answers: Mapping[str, str]
) -> tuple[dict, list[str], list[list[dict]]]:
    """Runs a whole interview through `servers.say` / `servers.slots` (REST).

    Returns the final slots, the fields asked in order, and every bot reply.
    """
    script = Script(opening, answers)
    replies = [servers.say(sender, opening)]
    while True:
        slots = servers.slots(sender)
        text = script.next(slots)
        if text is None:
            return slots, script.asked, replies
        replies.append(servers.say(sender, text))


async def arun_dialogue(
    say: Callable[[str], Awaitable[Any]],
    slots_of: Callable[[], Awaitable[Mapping[str, Any]]],
    script: Script,
    before_answer: Callable[[], Awaitable[None]] | None = None,
) -> Mapping[str, Any]:
    """Runs a whole interview with async `say(text)` and `slots_of()`; returns the slots.

    `before_answer` (e.g. a patient's pause to read) is awaited before each answer.
    """
    await say(script.opening)
    while True:
        slots = await slots_of()
        text = script.next(slots)
        if text is None:
            return slots
        if before_answer is not None:
            await before_answer()
        await say(text)


def run_conversation(
    servers: Any, dialogue: Mapping[str, Any], afterwards: tuple[str, ...] = ()
) -> tuple[str, list[dict]]:
    """A whole interview (REST), then each message of `afterwards`; its id and every event."""
    sender = f"conv-{uuid.uuid4().hex[:12]}"
    run_dialogue(servers, sender, dialogue["opening"], dialogue.get("answers", {}))
    for text in afterwards:
        servers.say(sender, text)
    return sender, servers.tracker(sender, events="ALL")["events"]
