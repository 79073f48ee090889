"""A fake Telegram Bot API server on 127.0.0.1 that records every call, for tests.

Serves `/bot<token>/<method>` like api.telegram.org (JSON, form or multipart
parameters; `{"ok": true, "result": ...}` answers in Bot API shape) from an aiohttp
app in a background thread. `fail` makes the next calls of a method fail with a
server error, to test retries.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

BOT_ID = 7000001
BOT_USERNAME = "HipTriageTestBot"
TOKEN = f"{BOT_ID}:AAH-fake-token-for-tests_0123456789"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    token: str
    result: Any = None
    at: float = field(default_factory=time.monotonic)


class FakeTelegram:
    """Records Bot API calls; `url` is the base URL for TelegramAPIServer.from_base."""

    def __init__(self, username: str = BOT_USERNAME) -> None:
        self.username = username
        self.calls: list[Call] = []
        self.failures: dict[str, int] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(100)
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------
    def start(self) -> FakeTelegram:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- what tests use --------------------------------------------------------------
    def fail(self, method: str, times: int = 1) -> None:
        """The next `times` calls of `method` get a 502 error."""
        with self._lock:
            self.failures[method] = times

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    def recorded(self, method: str | None = None, chat_id: Any = None) -> list[Call]:
        with self._lock:
            calls = list(self.calls)
        return [
            call
            for call in calls
            if (method is None or call.method == method)
            and (chat_id is None or str(call.params.get("chat_id")) == str(chat_id))
        ]

    def for_chat(self, chat_id: Any) -> list[Call]:
        """Every call about one chat (messages, keyboards, leaving)."""
        return self.recorded(chat_id=chat_id)

    def wait_until(self, check: Callable[[], Any], seconds: float = 15) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            time.sleep(0.05)
        raise TimeoutError(f"fake Telegram: condition not met; calls: {self.calls}")

    # --- the API ------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        with self._lock:
            call = Call(method, params, request.match_info["token"])
            self.calls.append(call)
            failing = self.failures.get(method, 0)
            if failing:
                self.failures[method] = failing - 1
            else:
                call.result = self._result(method, params)
        if failing:
            body = {"ok": False, "error_code": 502, "description": "Bad Gateway"}
            return web.json_response(body, status=502)
        return web.json_response({"ok": True, "result": call.result})

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            params = await request.json()
        elif request.method == "POST":
            params = {key: value for key, value in (await request.post()).items()}
        else:
            params = dict(request.query)
        for key in ("reply_markup", "allowed_updates"):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        return params

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method == "getMe":
            return {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "Hip pain helper",
                "username": self.username,
            }
        if method in {"sendMessage", "editMessageReplyMarkup", "editMessageText"}:
            chat_id = int(params.get("chat_id", 0))
            message = {
                "message_id": int(params.get("message_id") or next(self._ids)),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Hip pain helper"},
                "text": params.get("text", ""),
            }
            if params.get("reply_markup"):
                message["reply_markup"] = params["reply_markup"]
            return message
        if method == "copyMessage":
            return {"message_id": next(self._ids)}
        if method == "getWebhookInfo":
            return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}
        return True
