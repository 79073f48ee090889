"""Rasa's REST channel, strict about its input.

Configured in credentials.yml as `channels.rest.ClinicRestInput:` instead of `rest:`;
same URLs (`POST /webhooks/rest/webhook`, `GET /webhooks/rest/`), same body
`{"sender": "...", "message": "..."}` and same answer (a JSON list of bot messages).

The REST channel trusts whatever `sender` it is given, so it is for tests and staff
tools on loopback or an internal network only, never exposed to the public (see
SECURITY.md). Differences from `rasa.core.channels.rest.RestInput`:

- A body that is not a JSON object, a content type other than JSON, a missing or
  malformed `sender` or `message`, or a message over `MAX_MESSAGE_CHARS` gets a 4xx
  with a short JSON error instead of a 500 or a conversation called "default".
- NUL bytes and other control characters (except tab and newline) are removed
  (channels/health.py does it again for every channel, and answers empty messages).
- A `sender` starting with `web:` or `telegram:` is refused: those ids belong to the
  public channels (channels/ids.py), so REST can never name their conversations.
- `metadata`, `input_channel` and `stream` from the client are ignored: nothing the
  client sends besides the text is stored.
- Nothing logged contains the message text (Rasa's channel logs it on errors).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Awaitable, Callable, Tuple

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels import ids
from channels.text import MAX_MESSAGE_CHARS, clean_text

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
SENDER = re.compile(r"[A-Za-z0-9_.:@+=-]{1,128}")


class BadRequest(Exception):
    """A request the channel refuses: HTTP status and a short reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def parse_body(content_type: str | None, body: bytes) -> Tuple[str, str]:
    """Returns (sender, text) from a request, or raises BadRequest."""
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise BadRequest(415, "send JSON (Content-Type: application/json)")
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(413, "request too large")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadRequest(400, "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest(400, 'expected a JSON object {"sender": ..., "message": ...}')
    sender, text = data.get("sender"), data.get("message")
    if not isinstance(sender, str) or not SENDER.fullmatch(sender):
        raise BadRequest(400, "sender: 1-128 letters, digits or _.:@+=- is required")
    if ids.is_public(sender):
        raise BadRequest(400, "sender: web: and telegram: ids belong to those channels")
    if not isinstance(text, str):
        raise BadRequest(400, "message: a string is required")
    if len(text) > MAX_MESSAGE_CHARS:
        raise BadRequest(413, f"message: at most {MAX_MESSAGE_CHARS} characters")
    return sender, clean_text(text)


class ClinicRestInput(RestInput):
    """REST channel that refuses malformed requests with a 4xx and stores only the text."""

    @classmethod
    def name(cls) -> str:
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        """Routes: GET / (alive) and POST /webhook (a message; the bot's replies)."""
        rest = Blueprint("clinic_rest", __name__)

        @rest.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @rest.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                sender, text = parse_body(request.headers.get("content-type"), request.body)
            except BadRequest as error:
                return response.json({"error": error.reason}, status=error.status)
            collector = CollectingOutputChannel()
            message = UserMessage(text, collector, sender, input_channel=self.name())
            try:
                await on_new_message(message)
            except Exception as error:  # channels/health.py normally answers first
                logger.error("REST message not handled: %s", type(error).__name__)
                return response.json(collector.messages, status=503)
            return response.json(collector.messages)

        return rest
