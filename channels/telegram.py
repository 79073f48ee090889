"""Telegram channel: Rasa's connector, hardened for a private health chat.

Configured in `credentials.telegram.yml` as `channels.telegram.SecureTelegramInput`
(see docs/telegram.md). Differences from `rasa.core.channels.telegram`:

- Every update must carry the `X-Telegram-Bot-Api-Secret-Token` header with the
  secret given to setWebhook (`secret_token`); anything else gets 403.
- getMe and setWebhook run once, in the background after the server starts, and
  are retried on network errors: a Telegram outage never stops the server (and
  the website widget it also serves). A token that belongs to another bot, or a
  rejected webhook URL, is logged as an error and not retried.
- The conversation id is `telegram:<chat id>` (channels/ids.py): no other channel
  can name it.
- Buttons are inline keyboards; a press is answered (answerCallbackQuery), its
  keyboard is replaced by the chosen answer, and only the first press counts. A
  button answers only the question it came with: a press on any keyboard but the
  one of the bot's latest turn gets "That question has passed" and the current
  question again.
- `/start`, `/restart`, `/help`, `/stop` (also `/start@BotName`, `/start x`) reach
  Rasa as the intents of the same name; `/forget` reaches it as "delete my data"
  (erasure, asked to confirm first); from anything else every leading "/" is
  dropped, so users cannot inject intents or entities (`/inform{...}`, `/ /deny`).
- A photo's or document's caption is read like a typed message.
- Redelivered updates run once and only the first press of a keyboard counts,
  fleet-wide: with the Redis lock store, the facts live in that Redis
  (channels/shared_state.py).
- Edited messages and channel posts are ignored; group chats get one polite refusal
  and the bot leaves them; other non-text messages get a hint.
- Text is sent as plain text (no parse mode), one Telegram message per bot
  message, split only above Telegram's 4096-character limit.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import json
import logging
import os
import re
from typing import Any, Awaitable, Callable, Dict, List

import aiohttp
from aiogram import Bot
from aiogram.bot.api import TELEGRAM_PRODUCTION, TelegramAPIServer
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.exceptions import BadRequest, TelegramAPIError, Unauthorized, ValidationError
from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.channels.telegram import TelegramInput, TelegramOutput
from rasa.shared.exceptions import RasaException
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from channels import ids, shared_state
from channels import text as text_rules

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
API_SERVER_ENV = "TELEGRAM_API_SERVER"
# Commands passed to Rasa as intents; each is an intent in domain.yml (restart is
# Rasa's default intent).
COMMANDS = frozenset({"start", "restart", "help", "stop"})
# Commands that stand for a sentence: the NLU classifies it like typed text.
COMMAND_TEXTS = {"forget": "delete my data"}
ALLOWED_UPDATES = ["message", "callback_query"]
MAX_TEXT = 4096
MAX_CALLBACK_DATA = 64
CHOSEN = "_chosen"
REQUEST_TIMEOUT = 15
RETRY_MAX_SECONDS = 300.0

MIN_SECRET = 16
_SECRET = re.compile(r"^[A-Za-z0-9_-]{16,256}$")
_COMMAND = re.compile(r"^/([A-Za-z0-9_]+)(?:@([A-Za-z0-9_]+))?(?:\s.*)?$", re.DOTALL)
# How long the shared facts are kept: Telegram redelivers an update for up to 24 h.
UPDATE_TTL = 24 * 3600
KEYBOARD_TTL = 7 * 24 * 3600

GROUP_REFUSAL = (
    "Sorry, I only chat one-to-one, because what you tell me about your health is "
    "private. Please message me directly{handle}."
)
NOT_TEXT = "Sorry, I can only read typed messages. Please type your answer or tap a button."
PASSED = "That question has passed. Here it is again:"
PASSED_UNKNOWN = "That question has passed. Please type your answer to my last question."
ERROR_TEXT = (
    "Sorry, something went wrong on my side. Please try again in a moment. If you are "
    "worried about your health, call your midwife or doctor, or your emergency number."
)


def split_text(text: str, limit: int = MAX_TEXT) -> List[str]:
    """Splits text into Telegram-sized parts, at paragraph or line breaks when possible.

    Args:
        text: the message text.
        limit: the longest part allowed.

    Returns:
        The parts, none empty; an empty list for blank text.
    """
    text = text.strip()
    parts: List[str] = []
    while len(text) > limit:
        cut = max(text.rfind("\n\n", 0, limit), text.rfind("\n", 0, limit))
        if cut <= 0:
            cut = text.rfind(" ", 0, limit)
        if cut <= 0:
            cut = limit
        parts.append(text[:cut].strip())
        text = text[cut:].strip()
    if text:
        parts.append(text)
    return parts


def inline_keyboard(buttons: List[Dict[str, Any]]) -> InlineKeyboardMarkup:
    """Builds an inline keyboard from Rasa buttons.

    Up to three short buttons ("Yes" / "No" / "Not sure") share one row; otherwise
    each button gets its own row, which stays readable on a phone.

    Args:
        buttons: Rasa buttons, each with a `title` and a `payload`.

    Returns:
        The keyboard; each button's callback data is its payload.
    """
    keys = []
    for button in buttons:
        title = str(button.get("title") or button.get("payload") or "?")
        data = str(button.get("payload") or title)
        if len(data.encode()) > MAX_CALLBACK_DATA:
            # Telegram rejects the whole message otherwise, and the question is lost.
            logger.error("Payload over %d bytes, sent the title: %r", MAX_CALLBACK_DATA, data)
            data = title.encode()[:MAX_CALLBACK_DATA].decode(errors="ignore")
        keys.append(InlineKeyboardButton(title, callback_data=data))
    markup = InlineKeyboardMarkup()
    if len(keys) <= 3 and all(len(key.text) <= 16 for key in keys):
        markup.row(*keys)
    else:
        for key in keys:
            markup.row(key)
    return markup


# The bot's messages of the turn being handled: (message id, buttons or None).
_SENT: contextvars.ContextVar[List[tuple] | None] = contextvars.ContextVar(
    "telegram_sent", default=None
)


def _record(message: Any, buttons: List[Dict[str, Any]] | None) -> None:
    sent = _SENT.get()
    if sent is not None and getattr(message, "message_id", None) is not None:
        sent.append((message.message_id, buttons))


class SecureTelegramOutput(TelegramOutput):
    """Sends bot messages to Telegram: plain text, buttons as an inline keyboard."""

    def __init__(self, access_token: str, server: TelegramAPIServer = TELEGRAM_PRODUCTION) -> None:
        Bot.__init__(self, access_token, server=server, timeout=REQUEST_TIMEOUT)

    async def send_response(self, recipient_id: str, message: Dict[str, Any]) -> None:
        """Sends a bot message to the chat of conversation `telegram:<chat id>`."""
        await super().send_response(ids.unscoped(ids.TELEGRAM, str(recipient_id)), message)

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        """Sends text as one message (several only above Telegram's length limit)."""
        for part in split_text(text):
            _record(await self.send_message(recipient_id, part), None)

    async def send_text_with_buttons(
        self,
        recipient_id: str,
        text: str,
        buttons: List[Dict[str, Any]],
        button_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Sends text with the buttons as an inline keyboard under its last part."""
        parts = split_text(text) or ["Please choose:"]
        for part in parts[:-1]:
            _record(await self.send_message(recipient_id, part), None)
        sent = await self.send_message(
            recipient_id, parts[-1], reply_markup=inline_keyboard(buttons)
        )
        _record(sent, [{"title": b.get("title"), "payload": b.get("payload")} for b in buttons])

    async def close_session(self) -> None:
        """Closes the HTTP session to the Bot API, if one was opened."""
        if self._session is not None and not self._session.closed:
            await self._session.close()


class SecureTelegramInput(TelegramInput):
    """Receives Telegram updates on /webhooks/telegram/webhook (see module docstring)."""

    @classmethod
    def name(cls) -> str:
        return "telegram"

    @classmethod
    def from_credentials(cls, credentials: Dict[str, Any] | None) -> InputChannel:
        """Creates the channel from its section in the credentials file.

        Keys: `access_token`, `secret_token` (required), `verify` (the bot's
        username), `webhook_url` (empty: the webhook is managed elsewhere),
        `api_server` (a Bot API server base URL; default: the TELEGRAM_API_SERVER
        environment variable, else api.telegram.org).

        Raises:
            RasaException: a required value is missing or malformed.
        """
        if not credentials:
            cls.raise_missing_credentials_exception()
        token = str(credentials.get("access_token") or "").strip()
        if not token:
            raise RasaException("Telegram: access_token is empty (set TELEGRAM_TOKEN).")
        secret = str(credentials.get("secret_token") or "").strip()
        if not _SECRET.match(secret):
            raise RasaException(
                f"Telegram: secret_token must be {MIN_SECRET}-256 characters of A-Z, a-z, "
                "0-9, _ and - (set TELEGRAM_SECRET_TOKEN; e.g. `openssl rand -hex 32`)."
            )
        api_server = str(credentials.get("api_server") or os.environ.get(API_SERVER_ENV) or "")
        channel = cls(
            token,
            str(credentials.get("verify") or "").strip() or None,
            str(credentials.get("webhook_url") or "").strip() or None,
            secret_token=secret,
            api_server=api_server.strip() or None,
        )
        channel.get_output_channel()  # checks the token's format now, not at the first update
        return channel

    def __init__(
        self,
        access_token: str | None,
        verify: str | None,
        webhook_url: str | None,
        debug_mode: bool = False,
        *,
        secret_token: str,
        api_server: str | None = None,
        retry_seconds: float = 2.0,
    ) -> None:
        super().__init__(access_token, verify, webhook_url, debug_mode=debug_mode)
        self.secret_token = secret_token
        self.server = TelegramAPIServer.from_base(api_server) if api_server else TELEGRAM_PRODUCTION
        self.bot_username: str | None = (verify or "").lstrip("@") or None
        self.retry_seconds = retry_seconds
        # "pending", "set", "external" (no webhook_url) or "failed"; shown by GET /.
        self.webhook_state = "pending"
        self._output: SecureTelegramOutput | None = None
        self._setup_task: asyncio.Task | None = None
        self._state: shared_state.SharedState | None = None

    def get_output_channel(self) -> SecureTelegramOutput:
        """Returns the output channel (no network call, unlike Rasa's connector)."""
        if self._output is None:
            try:
                self._output = SecureTelegramOutput(self.access_token or "", self.server)
            except ValidationError as error:
                raise RasaException("Telegram: access_token is not a bot token.") from error
        return self._output

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Defines the webhook routes and the start-up/shut-down hooks."""
        telegram_webhook = Blueprint("telegram_webhook", __name__)
        out = self.get_output_channel()

        @telegram_webhook.listener("after_server_start")
        async def start_setup(_app: Any, _loop: Any) -> None:
            self._setup_task = asyncio.ensure_future(self.set_up_webhook())

        @telegram_webhook.listener("before_server_stop")
        async def stop(_app: Any, _loop: Any) -> None:
            if self._setup_task is not None:
                self._setup_task.cancel()
            await out.close_session()

        @telegram_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok", "webhook": self.webhook_state})

        @telegram_webhook.route("/webhook", methods=["POST"])
        async def message(request: Request) -> HTTPResponse:
            if not self.is_from_telegram(request.headers.get(SECRET_HEADER)):
                logger.warning("Telegram webhook: missing or wrong secret token, refused.")
                return response.text("forbidden", status=403)
            try:
                update = json.loads(request.body or b"")
            except ValueError:
                return response.text("invalid JSON", status=400)
            if not isinstance(update, dict):
                return response.text("invalid update", status=400)
            self.state_for(request.app)
            status = await self.receive(update, out, on_new_message)
            return response.text("success" if status == 200 else "try again", status=status)

        return telegram_webhook

    async def receive(
        self,
        update: Dict[str, Any],
        out: SecureTelegramOutput,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
    ) -> int:
        """Handles one update once, fleet-wide; the HTTP status to answer Telegram with.

        A redelivered update (same `update_id`) is answered 200 and not run again; when
        the shared state fails the answer is 503, so Telegram delivers it again later.
        """
        update_id = update.get("update_id")
        try:
            key = f"tg:update:{update_id}"
            if isinstance(update_id, int) and not self._shared().first(key, UPDATE_TTL):
                return 200  # Telegram redelivered it
        except Exception as error:  # Redis down: Telegram redelivers it later
            kind = type(error).__name__
            logger.error("Telegram: update not taken, shared state failed: %s", kind)
            return 503
        try:
            await self.handle_update(update, out, on_new_message)
        except Exception as error:
            # Telegram would redeliver the update on an error status, so answer 200 and
            # tell her something went wrong instead of going silent. The error's text
            # is not logged: it can quote her message.
            logger.error("Telegram update %s failed: %s", update_id, type(error).__name__)
            await self._try_send(out, _chat_id_of(update), ERROR_TEXT)
            if self.debug_mode:
                raise
        return 200

    def state_for(self, app: Any) -> shared_state.SharedState:
        """The shared state of the app's lock store (created at the first update)."""
        if self._state is None:
            agent = getattr(getattr(app, "ctx", None), "agent", None)
            self._state = shared_state.for_lock_store(getattr(agent, "lock_store", None))
        return self._state

    def _shared(self) -> shared_state.SharedState:
        if self._state is None:  # not from a webhook request (tests): this process only
            self._state = shared_state.MemoryState()
        return self._state

    def is_from_telegram(self, header: str | None) -> bool:
        """Checks the secret-token header, in constant time."""
        if not header:
            return False
        return hmac.compare_digest(header.encode(), self.secret_token.encode())

    async def set_up_webhook(self) -> None:
        """Checks the token with getMe, then calls setWebhook; retries on network errors."""
        out = self.get_output_channel()
        delay = self.retry_seconds
        while True:
            try:
                me = await out.get_me()
                username = me.username or ""
                expected = (self.verify or "").lstrip("@")
                if expected and username.lower() != expected.lower():
                    self.webhook_state = "failed"
                    logger.error(
                        "Telegram: the token belongs to @%s, not @%s (TELEGRAM_BOT_NAME); "
                        "the webhook was not set.",
                        username,
                        expected,
                    )
                    return
                self.bot_username = username or self.bot_username
                if not self.webhook_url:
                    self.webhook_state = "external"
                    logger.info("Telegram: no webhook_url, so the webhook is left as it is.")
                    return
                await out.request(
                    "setWebhook",
                    {
                        "url": self.webhook_url,
                        "secret_token": self.secret_token,
                        "allowed_updates": json.dumps(ALLOWED_UPDATES),
                    },
                )
                self.webhook_state = "set"
                logger.info("Telegram webhook set to %s for @%s.", self.webhook_url, username)
                return
            except (Unauthorized, BadRequest) as error:
                self.webhook_state = "failed"
                logger.error("Telegram rejected the bot set-up, not retrying: %s", error)
                return
            except (TelegramAPIError, aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                logger.error("Telegram set-up failed (%s); retrying in %.0f s.", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)

    def normalize_text(self, text: str) -> str:
        """Maps Telegram commands to Rasa intents; drops any other leading "/".

        Args:
            text: a message text or a button's callback data.

        Returns:
            "/start", "/restart", "/help" or "/stop" for those commands (also with
            "@BotName" or arguments), "delete my data" for `/forget`, else the
            text without leading slashes.
        """
        text = text.strip()
        if not text.startswith("/"):
            return text
        match = _COMMAND.match(text)
        if match:
            command, target = match.group(1).lower(), match.group(2)
            ours = (
                not target or not self.bot_username or target.lower() == self.bot_username.lower()
            )
            if command in COMMANDS and ours:
                return "/" + command
            if command in COMMAND_TEXTS and ours:
                return COMMAND_TEXTS[command]
        return text_rules.strip_slashes(text) or "/help"

    async def handle_update(
        self,
        update: Dict[str, Any],
        out: SecureTelegramOutput,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
    ) -> None:
        """Handles one update: a message or a button press; ignores everything else."""
        if isinstance(update.get("callback_query"), dict):
            await self._handle_button(update["callback_query"], out, on_new_message)
            return
        message = update.get("message")
        if not isinstance(message, dict):
            # edited_message, channel_post, ...: never a new turn.
            logger.debug("Telegram: ignored an update with %s.", sorted(update))
            return
        chat = message.get("chat") or {}
        if chat.get("id") is None:
            return
        if chat.get("type") != "private":
            await self._refuse_group(out, chat["id"])
            return
        text = message.get("text")
        if not isinstance(text, str) or not text.strip():
            text = message.get("caption")  # a photo's or document's words
        if not isinstance(text, str) or not text.strip():
            await out.send_message(chat["id"], NOT_TEXT)
            return
        await self._process(self.normalize_text(text), chat["id"], out, on_new_message)

    async def _handle_button(
        self,
        query: Dict[str, Any],
        out: SecureTelegramOutput,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
    ) -> None:
        if query.get("id"):
            try:
                await out.answer_callback_query(query["id"])  # stops the spinner
            except TelegramAPIError as error:
                logger.warning("Telegram: answerCallbackQuery failed: %s", error)
        message = query.get("message") or {}
        chat = message.get("chat") or {}
        data = query.get("data")
        if not isinstance(data, str) or data == CHOSEN or chat.get("id") is None:
            return
        if chat.get("type") != "private":
            await self._refuse_group(out, chat["id"])
            return
        chat_id, keyboard = chat["id"], message.get("message_id")
        state = self._shared()
        if not state.first(f"tg:press:{chat_id}:{keyboard}", KEYBOARD_TTL):
            return  # a second tap on the same keyboard
        live = self._live(state, chat_id)
        if live is None or live.get("keyboard") != keyboard:
            await self._question_passed(out, state, chat_id, message, live)
            return
        self._set_live(state, chat_id, {**live, "keyboard": None})
        await self._show_choice(out, chat_id, message, data)
        await self._process(self.normalize_text(data), chat_id, out, on_new_message)

    @staticmethod
    def _live(state: shared_state.SharedState, chat_id: Any) -> Dict[str, Any] | None:
        """The bot's latest question in the chat, or None if unknown.

        `{"last": message id, "keyboard": its id if it has buttons, "buttons": [...]}`
        """
        raw = state.get(f"tg:live:{chat_id}")
        try:
            live = json.loads(raw) if raw else None
        except ValueError:
            return None
        return live if isinstance(live, dict) else None

    @staticmethod
    def _set_live(state: shared_state.SharedState, chat_id: Any, live: Dict[str, Any]) -> None:
        state.put(f"tg:live:{chat_id}", json.dumps(live), KEYBOARD_TTL)

    async def _question_passed(
        self,
        out: SecureTelegramOutput,
        state: shared_state.SharedState,
        chat_id: Any,
        message: Dict[str, Any],
        live: Dict[str, Any] | None,
    ) -> None:
        """A press on an old keyboard: it answers nothing; the current question again."""
        try:  # the old keyboard goes, so it cannot be pressed again
            await out.edit_message_reply_markup(chat_id, message_id=message.get("message_id"))
        except TelegramAPIError as error:
            logger.warning("Telegram: could not remove an old keyboard: %s", error)
        if live is None or live.get("last") is None:
            await self._try_send(out, chat_id, PASSED_UNKNOWN)
            return
        await self._try_send(out, chat_id, PASSED)
        if live.get("keyboard"):  # the copy below takes over its buttons
            try:
                await out.edit_message_reply_markup(chat_id, message_id=live["keyboard"])
            except TelegramAPIError as error:
                logger.warning("Telegram: could not remove a repeated keyboard: %s", error)
        buttons = live.get("buttons")
        try:
            copy = await out.copy_message(
                chat_id,
                chat_id,
                live["last"],
                reply_markup=inline_keyboard(buttons) if buttons and live.get("keyboard") else None,
            )
        except TelegramAPIError as error:
            logger.warning("Telegram: could not repeat the question: %s", error)
            return
        copy_id = getattr(copy, "message_id", None)
        if copy_id is not None:
            keyboard = copy_id if live.get("keyboard") else None
            self._set_live(state, chat_id, {**live, "last": copy_id, "keyboard": keyboard})

    async def _show_choice(
        self, out: SecureTelegramOutput, chat_id: Any, message: Dict[str, Any], data: str
    ) -> None:
        """Replaces a pressed keyboard by the chosen answer, so old buttons can't be reused."""
        rows = (message.get("reply_markup") or {}).get("inline_keyboard") or []
        title = next(
            (key.get("text") for row in rows for key in row if key.get("callback_data") == data),
            data,
        )
        markup = InlineKeyboardMarkup(row_width=1)
        markup.row(InlineKeyboardButton(f"✓ {title}", callback_data=CHOSEN))
        try:
            await out.edit_message_reply_markup(
                chat_id, message_id=message.get("message_id"), reply_markup=markup
            )
        except TelegramAPIError as error:
            logger.warning("Telegram: could not update the pressed keyboard: %s", error)

    async def _refuse_group(self, out: SecureTelegramOutput, chat_id: Any) -> None:
        """Says once that the bot only chats one-to-one, then leaves the group."""
        state = self._shared()
        if not state.first(f"tg:refused:{chat_id}", UPDATE_TTL):
            return
        handle = f": @{self.bot_username}" if self.bot_username else ""
        await self._try_send(out, chat_id, GROUP_REFUSAL.format(handle=handle))
        try:
            await out.leave_chat(chat_id)
        except TelegramAPIError as error:
            logger.warning("Telegram: could not leave group %s: %s", chat_id, error)

    async def _process(
        self,
        text: str,
        chat_id: Any,
        out: SecureTelegramOutput,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
    ) -> None:
        sent: List[tuple] = []
        token = _SENT.set(sent)
        try:
            await on_new_message(
                UserMessage(
                    text,
                    out,
                    ids.scoped(ids.TELEGRAM, chat_id),
                    input_channel=self.name(),
                    metadata=None,
                )
            )
        finally:
            _SENT.reset(token)
            if sent:
                keyboards = [(mid, buttons) for mid, buttons in sent if buttons]
                keyboard, buttons = keyboards[-1] if keyboards else (None, None)
                live = {"last": sent[-1][0], "keyboard": keyboard, "buttons": buttons}
                try:
                    self._set_live(self._shared(), chat_id, live)
                except Exception as error:  # Redis down: her old keyboards count as passed
                    logger.error("Telegram: live keyboard not saved: %s", type(error).__name__)

    @staticmethod
    async def _try_send(out: SecureTelegramOutput, chat_id: Any, text: str) -> None:
        if chat_id is None:
            return
        try:
            await out.send_message(chat_id, text)
        except TelegramAPIError as error:
            logger.warning("Telegram: could not send to %s: %s", chat_id, error)


def _chat_id_of(update: Dict[str, Any]) -> Any:
    """The chat an update came from, if it is a private chat."""
    query = update.get("callback_query")
    message = query.get("message") if isinstance(query, dict) else update.get("message")
    chat = (message or {}).get("chat") if isinstance(message, dict) else None
    if isinstance(chat, dict) and chat.get("type") == "private":
        return chat.get("id")
    return None
