"""Her message as every channel hands it to Rasa: the message guard's text rules.

- NUL bytes and control characters (except tab and newline) are removed.
- At most `MAX_MESSAGE_CHARS` characters; longer ones get `TOO_LONG`, empty ones
  `EMPTY_PROMPT` (patches/degraded_mode.py answers both without storing anything).
- Text starting with "/" is Rasa's syntax for a typed intent (`/affirm`,
  `/inform{"stage": "pregnant"}`). Only that exact form, with an intent of the domain
  and entities as a JSON object, stays a payload (the interview never takes a field
  from one: actions/interview.py). A payload of a domain intent with anything else in
  its braces (`/inform{"requested_slot": "stage"}`) is the bare `/intent`: still a
  typed payload, which sets, clears and skips nothing. Anything else ("/ I am bleeding
  heavily", "//help", "/ /deny") is her words: every leading slash and space is
  dropped and the rest is read like any message, so a warning sign in it counts, and
  Rasa's regex-intent reader never logs the line.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

MAX_MESSAGE_CHARS = 4000
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
EMPTY_PROMPT = (
    'I didn\'t get a message. Tell me about your hip pain in your own words, or type "help".'
)
TOO_LONG = (
    f"Sorry, that message is too long for me (over {MAX_MESSAGE_CHARS} characters). Please "
    "tell me about your hip pain in a few sentences."
)
_PAYLOAD = re.compile(r"^/([A-Za-z_][A-Za-z0-9_]{0,63})(\{.+\})?$", re.DOTALL)
_LEADING = re.compile(r"^[\s/]+")


def strip_slashes(text: str) -> str:
    """The text without its leading slashes and spaces ("/ /deny" -> "deny")."""
    return _LEADING.sub("", text)


def clean_text(text: str) -> str:
    """The message without NUL bytes and control characters (tab and newline kept)."""
    return CONTROL.sub(" ", text.replace("\x00", ""))


def is_payload(text: str, intents: Iterable[str], entities: Iterable[str] = ()) -> bool:
    """True for exactly `/intent` or `/intent{json object}` of the domain.

    Only domain entities: Rasa warns with the whole line about anything else.
    """
    match = _PAYLOAD.match(text.strip())
    if not match or match.group(1) not in set(intents):
        return False
    if match.group(2) is None:
        return True
    try:
        values = json.loads(match.group(2))
    except ValueError:
        return False
    return isinstance(values, dict) and set(values) <= set(entities)


def as_read(text: str, domain: Any = None) -> str:
    """The text Rasa reads: a well-formed payload as it is, else without leading slashes.

    Args:
        text: her message, cleaned.
        domain: the domain (its `intents` and `entities`); None: no payload is known.

    Returns:
        The text; an empty string for slashes only (it gets `EMPTY_PROMPT`).
    """
    stripped = text.strip()
    if not stripped.startswith("/"):
        return text
    intents = getattr(domain, "intents", None) or ()
    entities = getattr(domain, "entities", None) or ()
    if is_payload(stripped, intents, entities):
        return text
    match = _PAYLOAD.match(stripped)
    if match and match.group(1) in set(intents):
        return "/" + match.group(1)  # a payload still, without what the domain lacks
    return strip_slashes(stripped)
