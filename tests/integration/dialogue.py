"""Drives a whole interview the way the clinic's check does, through the REST channel."""

from __future__ import annotations

from typing import Any, Mapping

MAX_TURNS = 30


def run_dialogue(
    servers: Any, sender: str, opening: str, answers: Mapping[str, str]
) -> tuple[dict, list[str], list[list[dict]]]:
    """Opens with free text, then answers whatever `requested_slot` names.

    Returns the final slots, the fields asked in order, and every bot reply.
    Fields with no scripted answer get "not sure".
    """
    replies = [servers.say(sender, opening)]
    asked: list[str] = []
    for _ in range(MAX_TURNS):
        slots = servers.tracker(sender)["slots"]
        if slots.get("triage"):
            return slots, asked, replies
        requested = slots.get("requested_slot")
        assert requested, f"no outcome and no question after {asked}: {replies[-1]}"
        asked.append(requested)
        replies.append(servers.say(sender, str(answers.get(requested, "not sure"))))
    raise AssertionError(f"no outcome after {MAX_TURNS} turns; asked {asked}")
