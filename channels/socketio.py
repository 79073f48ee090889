"""The website widget's channel: Rasa's socket.io channel, for one patient per conversation.

Configured in credentials.yml as `channels.socketio.ClinicSocketIOInput:` instead of
`socketio:`; same socket path (/socket.io), events (`session_request`,
`session_confirm`, `user_uttered`, `bot_uttered`) and message format. Differences from
`rasa.core.channels.socketio.SocketIOInput` (see SECURITY.md):

- **Ids come from the server.** `session_request` may present an id only of the shape
  the server issues (32 hex characters); anything else (a Telegram chat id, a REST
  sender, 10 000 characters) gets a fresh one in `session_confirm`. The conversation
  is `web:<id>` (channels/ids.py), so no other channel's conversation can be named.
- A message is taken only from a socket that asked for a session, for that session:
  a `user_uttered` naming another `session_id` (or none) is ignored.
- **Only the clinic's origins connect**: `cors_allowed_origins` (a list, or a string
  of origins separated by commas or spaces; default: the `WEB_ORIGINS` environment
  variable, else the demo page of `make run` on 127.0.0.1:8080 / localhost:8080).
- **Metadata** over `max_metadata_bytes` (2048) refuses the message; only the keys in
  `metadata_keys` (none by default: the widget sends none) are kept.
- **Messages per socket are limited**: `message_rate` per second with a burst of
  `message_burst` (1 and 5; or `WEB_MESSAGE_RATE` / `WEB_MESSAGE_BURST`). Over the
  limit she gets one polite message and nothing is stored.

A `user_uttered` may ask for an acknowledgement (socket.io ack): it is `{"accepted":
true}` once the message was handled, `{"accepted": false, "reason": ...}` if refused.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, Iterable, List

from rasa.core.channels.channel import UserMessage, decode_bearer_token
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from channels import ids

logger = logging.getLogger(__name__)

ORIGINS_ENV = "WEB_ORIGINS"
RATE_ENV = "WEB_MESSAGE_RATE"
BURST_ENV = "WEB_MESSAGE_BURST"
DEV_ORIGINS = ("http://127.0.0.1:8080", "http://localhost:8080")
MAX_METADATA_BYTES = 2048
DEFAULT_RATE = 1.0
DEFAULT_BURST = 5
TOO_FAST = (
    "You're sending messages faster than I can read them. Please wait a moment, then "
    "send your last message again."
)
BAD_METADATA = "Sorry, I couldn't read that message. Please type it again."


def parse_origins(value: Any) -> List[str]:
    """Origins from a list or a string separated by commas or spaces ("" -> none)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        items: Iterable[Any] = value
    else:
        items = re.split(r"[\s,]+", str(value))
    return [str(item).strip().rstrip("/") for item in items if str(item).strip()]


@dataclass
class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; one token per message."""

    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    stamp: float = field(init=False)
    told: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)
        self.stamp = self.clock()

    def take(self) -> bool:
        """Spends a token if there is one; True if the message may go through."""
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.told = False
            return True
        return False

    def tell_once(self) -> bool:
        """True the first time a message is refused since the last one went through."""
        first, self.told = not self.told, True
        return first


def _number(value: Any, env: str, default: float) -> float:
    raw = value if value not in (None, "") else os.environ.get(env)
    try:
        number = float(raw) if raw not in (None, "") else default
    except (TypeError, ValueError):
        raise ValueError(f"socket.io channel: {env.lower()} must be a number") from None
    if number <= 0:
        raise ValueError(f"socket.io channel: {env.lower()} must be above 0")
    return number


class ClinicSocketIOInput(SocketIOInput):
    """Rasa's socket.io channel with server-issued ids and limits (module docstring)."""

    @classmethod
    def name(cls) -> str:
        return "socketio"

    @classmethod
    def from_credentials(cls, credentials: Dict[str, Any] | None) -> ClinicSocketIOInput:
        """Creates the channel from its section in the credentials file."""
        credentials = credentials or {}
        origins = credentials.get("cors_allowed_origins")
        if origins is None:
            origins = os.environ.get(ORIGINS_ENV, " ".join(DEV_ORIGINS))
        return cls(
            credentials.get("user_message_evt", "user_uttered"),
            credentials.get("bot_message_evt", "bot_uttered"),
            credentials.get("namespace"),
            True,
            credentials.get("socketio_path", "/socket.io"),
            credentials.get("jwt_key"),
            credentials.get("jwt_method", "HS256"),
            credentials.get("metadata_key", "metadata"),
            origins=parse_origins(origins),
            metadata_keys=list(credentials.get("metadata_keys") or []),
            max_metadata_bytes=int(credentials.get("max_metadata_bytes") or MAX_METADATA_BYTES),
            message_rate=_number(credentials.get("message_rate"), RATE_ENV, DEFAULT_RATE),
            message_burst=int(_number(credentials.get("message_burst"), BURST_ENV, DEFAULT_BURST)),
        )

    def __init__(
        self,
        *args: Any,
        origins: Iterable[str] = DEV_ORIGINS,
        metadata_keys: Iterable[str] = (),
        max_metadata_bytes: int = MAX_METADATA_BYTES,
        message_rate: float = DEFAULT_RATE,
        message_burst: int = DEFAULT_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(*args)
        self.session_persistence = True
        self.origins = list(origins)
        self.metadata_keys = frozenset(metadata_keys)
        self.max_metadata_bytes = max_metadata_bytes
        self.message_rate = message_rate
        self.message_burst = max(1, message_burst)
        self.clock = clock
        self._sessions: Dict[str, str] = {}  # socket id -> web session id
        self._buckets: Dict[str, TokenBucket] = {}

    def _origin_allowed(self, origin: str | None) -> bool:
        return origin is not None and origin.rstrip("/") in self.origins

    def _metadata(self, data: Dict[str, Any]) -> Dict[str, Any] | None:
        """The metadata to store ({} for none), or None if the message must be refused."""
        raw = data.get(self.metadata_key)
        if raw is None:
            return {}
        size = len(raw.encode()) if isinstance(raw, str) else len(json.dumps(raw, default=str))
        if size > self.max_metadata_bytes:
            return None
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                return None
        if not isinstance(raw, dict):
            return None
        return {key: value for key, value in raw.items() if key in self.metadata_keys}

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """The socket.io server and its events (module docstring)."""
        # The Origin header of every browser connection is checked in `connect` below (a
        # client that sends none, e.g. a server-side script, is not a browser page).
        # engine.io's own CORS stays off: Rasa's --cors answers the polling requests'
        # CORS, and both at once would send the header twice, which browsers refuse.
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins=[])
        socketio_webhook = SocketBlueprint(sio, self.socketio_path, "socketio_webhook", __name__)
        self.sio = sio

        @socketio_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @sio.on("connect", namespace=self.namespace)
        async def connect(sid: str, environ: Dict, auth: Dict | None) -> bool:
            origin = environ.get("HTTP_ORIGIN")
            if origin and not self._origin_allowed(origin):
                logger.info("socket.io: a page of another site was refused.")
                return False
            if self.jwt_key:
                token = auth.get("token") if isinstance(auth, dict) else None
                if not token or not decode_bearer_token(token, self.jwt_key, self.jwt_algorithm):
                    return False
            self._buckets[sid] = TokenBucket(self.message_rate, self.message_burst, self.clock)
            return True

        @sio.on("disconnect", namespace=self.namespace)
        async def disconnect(sid: str) -> None:
            self._sessions.pop(sid, None)
            self._buckets.pop(sid, None)

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: str, data: Any) -> None:
            requested = data.get("session_id") if isinstance(data, dict) else None
            session_id = ids.web_id(requested)
            if requested is not None and session_id != requested:
                logger.info("socket.io: a session id the server did not issue got a new one.")
            old = self._sessions.get(sid)
            if old is not None and old != session_id:
                sio.leave_room(sid, ids.scoped(ids.WEB, old), namespace=self.namespace)
            self._sessions[sid] = session_id
            sio.enter_room(sid, ids.scoped(ids.WEB, session_id), namespace=self.namespace)
            await sio.emit("session_confirm", session_id, room=sid, namespace=self.namespace)

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: str, data: Any) -> Dict[str, Any]:
            session_id = self._sessions.get(sid)
            if session_id is None or not isinstance(data, dict):
                return {"accepted": False, "reason": "no session"}
            if data.get("session_id") != session_id:
                logger.warning("socket.io: a message for another session id was ignored.")
                return {"accepted": False, "reason": "wrong session"}
            bucket = self._buckets.get(sid)
            if bucket is not None and not bucket.take():
                if bucket.tell_once():
                    await self._tell(sio, sid, TOO_FAST)
                return {"accepted": False, "reason": "too fast"}
            text = data.get("message")
            metadata = self._metadata(data)
            if not isinstance(text, str) or metadata is None:
                await self._tell(sio, sid, BAD_METADATA)
                return {"accepted": False, "reason": "unreadable"}
            message = UserMessage(
                text,
                SocketIOOutput(sio, self.bot_message_evt),
                ids.scoped(ids.WEB, session_id),
                input_channel=self.name(),
                metadata=metadata or None,
            )
            await on_new_message(message)
            return {"accepted": True}

        return socketio_webhook

    async def _tell(self, sio: AsyncServer, sid: str, text: str) -> None:
        await sio.emit(self.bot_message_evt, {"text": text}, room=sid, namespace=self.namespace)
