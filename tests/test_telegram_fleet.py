"""The Telegram channel's once-only rules across a fleet: two channel objects (two Rasa
servers' memories) sharing one Redis, as in production (the lock store's Redis), and
a stand-in for Rasa. A redelivered update runs once whichever server gets it; only the
first press of a keyboard counts; a button answers only the question it came with.
The same channel against a real Rasa server: tests/integration/test_telegram.py.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace
from typing import Any

import pytest

from channels import ids, shared_state
from channels.telegram import PASSED, PASSED_UNKNOWN, SecureTelegramInput, SecureTelegramOutput
from tests.support.fake_telegram import BOT_USERNAME, TOKEN
from tests.support.redis_server import redis_server

SECRET = "fleet_test_secret_0123456789"
CHAT = 424242
YES_NO = [{"title": "Yes", "payload": "yes"}, {"title": "No", "payload": "no"}]
QUESTIONS = [
    ("Does it wake you at night?", YES_NO),
    ("Is it worse on stairs?", YES_NO),
    ("Where exactly does it hurt?", None),
    ("Any numbness?", YES_NO),
]


class RecordingOutput(SecureTelegramOutput):
    """The Bot API calls, recorded instead of sent."""

    ids = itertools.count(500)

    def __init__(self) -> None:
        super().__init__(TOKEN)
        self.calls: list[tuple[str, dict]] = []

    def _message(self) -> Any:
        return SimpleNamespace(message_id=next(self.ids))

    async def send_message(self, chat_id: Any, text: str, **kwargs: Any) -> Any:
        message = self._message()
        markup = kwargs.get("reply_markup")
        params = {"chat_id": chat_id, "text": text, "markup": markup}
        self.calls.append(("sendMessage", {**params, "message_id": message.message_id}))
        return message

    async def answer_callback_query(self, *args: Any, **kwargs: Any) -> bool:
        self.calls.append(("answerCallbackQuery", {}))
        return True

    async def edit_message_reply_markup(self, chat_id: Any = None, message_id: Any = None,
                                        **kwargs: Any) -> bool:  # fmt: skip
        self.calls.append(("editMessageReplyMarkup", {"message_id": message_id}))
        return True

    async def copy_message(self, chat_id: Any, from_chat_id: Any, message_id: Any,
                           **kwargs: Any) -> Any:  # fmt: skip
        copy = self._message()
        self.calls.append(("copyMessage", {"message_id": message_id, "copy": copy.message_id,
                                           "markup": kwargs.get("reply_markup")}))  # fmt: skip
        return copy

    def sent(self) -> list[dict]:
        return [params for method, params in self.calls if method == "sendMessage"]


class FakeRasa:
    """Asks the next question of QUESTIONS after each message; records what it got."""

    def __init__(self) -> None:
        self.got: list[tuple[str, str]] = []

    async def __call__(self, message: Any) -> None:
        self.got.append((message.sender_id, message.text))
        text, buttons = QUESTIONS[min(len(self.got) - 1, len(QUESTIONS) - 1)]
        reply = {"text": text, "buttons": buttons} if buttons else {"text": text}
        await message.output_channel.send_response(message.sender_id, reply)


def server(state: shared_state.SharedState) -> SecureTelegramInput:
    channel = SecureTelegramInput.from_credentials(
        {"access_token": TOKEN, "secret_token": SECRET, "verify": BOT_USERNAME}
    )
    channel._state = state
    return channel


_updates = itertools.count(9000)


def typed(text: str, chat: int = CHAT) -> dict:
    return {"update_id": next(_updates),
            "message": {"message_id": next(_updates), "chat": {"id": chat, "type": "private"},
                        "text": text}}  # fmt: skip


def pressed(sent: dict, data: str, chat: int = CHAT) -> dict:
    message = {"message_id": sent["message_id"], "chat": {"id": chat, "type": "private"}}
    query = {"id": f"cb{next(_updates)}", "message": message, "data": data}
    return {"update_id": next(_updates), "callback_query": query}


@pytest.fixture(params=["redis", "memory"])
def fleet(request):
    """Two servers; with Redis they share it, with memory (one server) they are one."""
    if request.param == "memory":
        one = server(shared_state.MemoryState())
        yield one, one
        return
    with redis_server() as client:
        state_a = shared_state.RedisState(client, "hiptriage:lock:#channel:")
        state_b = shared_state.RedisState(client, "hiptriage:lock:#channel:")
        yield server(state_a), server(state_b)


async def test_a_redelivered_update_runs_once_whichever_server_gets_it(fleet):
    a, b = fleet
    rasa, out = FakeRasa(), RecordingOutput()
    update = typed("my hip hurts at night")
    assert await a.receive(update, out, rasa) == 200
    assert await b.receive(update, out, rasa) == 200  # Telegram delivered it again, to B
    assert rasa.got == [(f"telegram:{CHAT}", "my hip hurts at night")]
    assert len(out.sent()) == 1


async def test_only_the_first_press_counts_fleet_wide(fleet):
    a, b = fleet
    rasa, out = FakeRasa(), RecordingOutput()
    await a.receive(typed("my hip hurts"), out, rasa)
    question = out.sent()[-1]
    assert question["markup"] is not None
    await a.receive(pressed(question, "yes"), out, rasa)
    await b.receive(pressed(question, "no"), out, rasa)  # a double tap, reaching server B
    assert [text for _, text in rasa.got] == ["my hip hurts", "yes"]


async def test_an_old_keyboard_answers_nothing_and_the_current_question_comes_again(fleet):
    a, b = fleet
    rasa, out = FakeRasa(), RecordingOutput()
    await a.receive(typed("my hip hurts"), out, rasa)
    first = out.sent()[-1]  # "Does it wake you at night?" [Yes] [No]
    await b.receive(typed("it wakes me up, yes"), out, rasa)  # typed, never pressed
    current = out.sent()[-1]  # "Is it worse on stairs?" [Yes] [No]
    assert current["text"] == QUESTIONS[1][0]
    before = len(out.calls)
    await a.receive(pressed(first, "yes"), out, rasa)  # the stale "Yes", on server A
    assert [text for _, text in rasa.got] == ["my hip hurts", "it wakes me up, yes"]
    calls = out.calls[before:]
    assert [method for method, _ in calls] == [
        "answerCallbackQuery", "editMessageReplyMarkup", "sendMessage",
        "editMessageReplyMarkup", "copyMessage"]  # fmt: skip
    assert calls[1][1]["message_id"] == first["message_id"]  # the old keyboard goes
    assert calls[2][1]["text"] == PASSED
    assert calls[3][1]["message_id"] == current["message_id"]  # its buttons move to the copy
    assert calls[4][1]["message_id"] == current["message_id"] and calls[4][1]["markup"]
    copy = {"message_id": calls[4][1]["copy"]}
    # The copy's buttons answer the current question; the original's no longer do.
    await b.receive(pressed(copy, "no"), out, rasa)
    assert rasa.got[-1] == (f"telegram:{CHAT}", "no")
    await a.receive(pressed(current, "yes"), out, rasa)
    assert len(rasa.got) == 3


async def test_a_keyboard_after_a_question_without_buttons_has_passed(fleet):
    a, b = fleet
    rasa, out = FakeRasa(), RecordingOutput()
    for text in ("my hip hurts", "yes"):
        await a.receive(typed(text), out, rasa)
    second = out.sent()[-1]  # "Is it worse on stairs?" [Yes] [No]
    await b.receive(pressed(second, "yes"), out, rasa)  # -> "Where exactly does it hurt?"
    free_text = out.sent()[-1]
    assert free_text["markup"] is None
    stale = {"message_id": out.sent()[0]["message_id"]}
    before = len(out.calls)
    await a.receive(pressed(stale, "no"), out, rasa)
    assert len(rasa.got) == 3
    methods = [method for method, _ in out.calls[before:]]
    assert methods[-1] == "copyMessage" and "sendMessage" in methods
    assert out.calls[-1][1]["message_id"] == free_text["message_id"]
    assert out.calls[-1][1]["markup"] is None


async def test_a_press_with_no_known_question_is_not_taken_as_an_answer():
    channel = server(shared_state.MemoryState())  # e.g. a restarted single server
    rasa, out = FakeRasa(), RecordingOutput()
    await channel.receive(pressed({"message_id": 77}, "yes"), out, rasa)
    assert rasa.got == []
    assert out.sent()[-1]["text"] == PASSED_UNKNOWN


async def test_shared_state_failure_asks_telegram_to_deliver_again():
    class Down(shared_state.MemoryState):
        def first(self, key: str, ttl: int) -> bool:
            raise ConnectionError("redis down")

    channel = server(Down())
    rasa, out = FakeRasa(), RecordingOutput()
    assert await channel.receive(typed("hello"), out, rasa) == 503
    assert rasa.got == []


def test_conversation_ids_are_scoped_and_replies_reach_the_chat():
    assert ids.scoped(ids.TELEGRAM, CHAT) == f"telegram:{CHAT}"
    assert ids.unscoped(ids.TELEGRAM, f"telegram:{CHAT}") == str(CHAT)
