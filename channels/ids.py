"""Conversation ids: one patient, one conversation, whatever channel she uses.

Every channel shares one tracker store, so an id names a conversation everywhere.
The public channels scope theirs, so they can never name each other's:

- website widget (socket.io): ``web:`` + 32 hex characters the server issued
  (`uuid4().hex`, 122 random bits); a client may only present an id of that shape,
  anything else gets a fresh one (channels/socketio.py);
- Telegram: ``telegram:`` + the chat id Telegram gives (the bot only serves private
  chats, whose id is the user's: channels/telegram.py);
- the internal REST channel (tests, the staff shell): the `sender` as given, which may
  not start with a public channel's prefix (channels/rest.py).
"""

from __future__ import annotations

import re
import uuid

WEB = "web"
TELEGRAM = "telegram"
PUBLIC = (WEB, TELEGRAM)
WEB_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_WEB_ID_CHARS = 64


def scoped(channel: str, raw: object) -> str:
    """The conversation id of `raw` on `channel` (e.g. ``telegram:123``)."""
    return f"{channel}:{raw}"


def unscoped(channel: str, conversation_id: str) -> str:
    """The channel's own id in a conversation id (``telegram:123`` -> ``123``)."""
    prefix = f"{channel}:"
    return conversation_id[len(prefix) :] if conversation_id.startswith(prefix) else conversation_id


def is_public(conversation_id: str) -> bool:
    """True if the id belongs to a public channel (REST may not use it)."""
    return any(conversation_id.startswith(f"{channel}:") for channel in PUBLIC)


def new_web_id() -> str:
    """A fresh web session id, as the server issues it."""
    return uuid.uuid4().hex


def web_id(requested: object) -> str:
    """The web session id to confirm.

    The requested one if the server could have issued it (32 lower-case hex
    characters, at most 64 characters in all), else a fresh one.
    """
    if isinstance(requested, str) and len(requested) <= MAX_WEB_ID_CHARS:
        if WEB_ID.match(requested):
            return requested
    return new_web_id()
