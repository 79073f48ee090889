"""The Telegram channel (channels/telegram.py) against a fake Bot API server.

A real Rasa server runs with credentials.telegram.yml, configured through the
environment like production, with TELEGRAM_API_SERVER pointing at the fake
server on 127.0.0.1; updates are posted to its webhook as Telegram would.
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.error
import urllib.request

import pytest
from rasa.shared.exceptions import RasaException

from channels.telegram import SecureTelegramInput, inline_keyboard, split_text
from tests.integration.conftest import TELEGRAM_SECRET as SECRET
from tests.support.fake_telegram import BOT_USERNAME, TOKEN, FakeTelegram
from tests.support.ports import wait_until
from tests.support.servers import Servers

PAIN = "im 31 weeks pregant and the outside of my right hip burns, worse at night lying on it"
SAFETY_KEYBOARD = [
    [{"text": "None of these", "callback_data": "none of these"}],
    [{"text": "Yes, one of these", "callback_data": "yes"}],
]
_ids = itertools.count(1000)


# --- the connector's pure parts --------------------------------------------------------
def channel(**credentials: str) -> SecureTelegramInput:
    values = {"access_token": TOKEN, "secret_token": SECRET, "verify": BOT_USERNAME}
    return SecureTelegramInput.from_credentials({**values, **credentials})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/start", "/start"),
        (f"/start@{BOT_USERNAME}", "/start"),
        (f"/START@{BOT_USERNAME.lower()}", "/start"),
        ("/start clinic-website", "/start"),
        ("/restart", "/restart"),
        ("/help", "/help"),
        (f"/help@{BOT_USERNAME}", "/help"),
        ("/stop", "/stop"),
        ("/forget", "delete my data"),
        (f"/forget@{BOT_USERNAME}", "delete my data"),
        ("/forget@SomeOtherBot", "forget@SomeOtherBot"),
        ("/start@SomeOtherBot", "start@SomeOtherBot"),
        ('/inform{"severity": 10}', 'inform{"severity": 10}'),
        ("/red_flag_emergency", "red_flag_emergency"),
        ("//", "/help"),
        ("/ /deny", "deny"),  # every leading slash goes, not only the first
        ("// /inform", "inform"),
        ("/ I am bleeding heavily", "I am bleeding heavily"),
        ("  my hip hurts  ", "my hip hurts"),
    ],
)
def test_commands_map_to_intents_and_nothing_else_is_injected(text: str, expected: str) -> None:
    assert channel().normalize_text(text) == expected


def test_credentials_are_checked_at_start_up() -> None:
    with pytest.raises(RasaException, match="secret_token"):
        channel(secret_token="")
    with pytest.raises(RasaException, match="secret_token"):
        channel(secret_token="has spaces")
    with pytest.raises(RasaException, match="16-256 characters"):
        channel(secret_token="fifteen-chars15")
    assert channel(secret_token="sixteen-chars-16").secret_token == "sixteen-chars-16"
    with pytest.raises(RasaException, match="access_token"):
        channel(access_token="")
    with pytest.raises(RasaException, match="not a bot token"):
        channel(access_token="not-a-token")
    assert channel(api_server="http://127.0.0.1:9/").server.api_url("T", "getMe") == (
        "http://127.0.0.1:9/botT/getMe"
    )


def test_secret_header_is_compared_exactly() -> None:
    telegram = channel()
    assert telegram.is_from_telegram(SECRET)
    assert not telegram.is_from_telegram(None)
    assert not telegram.is_from_telegram("")
    assert not telegram.is_from_telegram(SECRET + "x")


def test_keyboard_layout_and_long_payloads() -> None:
    short = inline_keyboard([{"title": t, "payload": t.lower()} for t in ("Yes", "No", "Not sure")])
    assert [[b.text for b in row] for row in short.inline_keyboard] == [["Yes", "No", "Not sure"]]
    buttons = [{"title": "Sitting", "payload": "x" * 80}]
    buttons.append({"title": "Lying on my side, at night", "payload": "b"})
    buttons.append({"title": "Stairs", "payload": "c"})
    data = [[b.callback_data for b in row] for row in inline_keyboard(buttons).inline_keyboard]
    assert data == [["Sitting"], ["b"], ["c"]]  # a long payload is replaced by the title


def test_long_text_is_split_under_the_limit() -> None:
    text = ("word " * 500 + "\n\n") * 3
    parts = split_text(text)
    assert len(parts) > 1 and all(0 < len(p) <= 4096 for p in parts)
    assert " ".join(parts).split() == text.split()
    assert split_text("  ") == []


# --- the shared app, with the Telegram channel (tests/integration/conftest.py) ----------
@pytest.fixture
def fake(fake_telegram: FakeTelegram) -> FakeTelegram:
    return fake_telegram


@pytest.fixture
def rasa(servers: Servers) -> Servers:
    wait_until(lambda: health(servers)["webhook"] == "set", 30, "the webhook to be set")
    return servers


def health(servers: Servers) -> dict:
    with urllib.request.urlopen(f"{servers.url}/webhooks/telegram/", timeout=5) as response:
        return json.loads(response.read())


def post(servers: Servers, update: dict, secret: str | None = SECRET) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    request = urllib.request.Request(
        servers.webhook, data=json.dumps(update).encode(), headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def new_chat() -> int:
    return next(_ids) * 1000 + 7


def message(chat_id: int, text: str, kind: str = "message", chat_type: str = "private") -> dict:
    chat = {"id": chat_id, "type": chat_type}
    chat.update({"first_name": "Anna"} if chat_type == "private" else {"title": "Mums group"})
    return {
        "update_id": next(_ids),
        kind: {
            "message_id": next(_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": {"id": abs(chat_id), "is_bot": False, "first_name": "Anna"},
            "text": text,
        },
    }


def press(chat_id: int, bot_message: dict, data: str) -> dict:
    return {
        "update_id": next(_ids),
        "callback_query": {
            "id": f"cb{next(_ids)}",
            "from": {"id": chat_id, "is_bot": False, "first_name": "Anna"},
            "chat_instance": "42",
            "message": bot_message,
            "data": data,
        },
    }


def texts(fake: FakeTelegram, chat_id: int) -> list[str]:
    return [call.params["text"] for call in fake.recorded("sendMessage", chat_id)]


def keyboard(call) -> list[list[dict]] | None:
    return (call.params.get("reply_markup") or {}).get("inline_keyboard")


def safety_check(fake: FakeTelegram, rasa: Servers, chat_id: int):
    assert post(rasa, message(chat_id, PAIN)) == 200
    sent = fake.recorded("sendMessage", chat_id)
    with_keys = [call for call in sent if keyboard(call)]
    assert with_keys, f"no message with buttons: {[c.params for c in sent]}"
    return with_keys[0]


def test_webhook_is_set_once_with_the_secret_and_retried(fake: FakeTelegram, rasa) -> None:
    calls = fake.recorded("setWebhook")
    assert len(calls) == 2  # the first one failed (502), the retry worked
    params = calls[-1].params
    assert params["url"] == rasa.webhook
    assert params["secret_token"] == SECRET
    assert params["allowed_updates"] == ["message", "callback_query"]
    assert {call.token for call in fake.recorded()} == {TOKEN}
    getme_before = len(fake.recorded("getMe"))
    chat_id = new_chat()
    assert post(rasa, message(chat_id, "hello")) == 200
    assert len(fake.recorded("getMe")) == getme_before  # no getMe per update


def test_description_gets_the_safety_check_as_an_inline_keyboard(fake, rasa) -> None:
    chat_id = new_chat()
    call = safety_check(fake, rasa, chat_id)
    assert "safety check" in call.params["text"]
    assert keyboard(call) == SAFETY_KEYBOARD
    assert "parse_mode" not in call.params  # plain text: nothing she types is rendered


def test_button_press_is_answered_and_the_interview_goes_on(fake, rasa) -> None:
    chat_id = new_chat()
    question = safety_check(fake, rasa, chat_id)
    before = len(fake.recorded())
    update = press(chat_id, question.result, "none of these")
    assert post(rasa, update) == 200
    after = fake.recorded()[before:]
    methods = [call.method for call in after]
    assert methods[0] == "answerCallbackQuery", methods
    assert after[0].params["callback_query_id"] == update["callback_query"]["id"]
    edit = next(call for call in after if call.method == "editMessageReplyMarkup")
    assert int(edit.params["message_id"]) == question.result["message_id"]
    assert keyboard(edit) == [[{"text": "✓ None of these", "callback_data": "_chosen"}]]
    sent = [call for call in after if call.method == "sendMessage"]
    assert sent, "no next question"
    assert all("safety check" not in call.params["text"] for call in sent)
    assert keyboard(sent[-1]), f"the next question has no buttons: {sent[-1].params}"

    # A second tap on the same keyboard (or on the "✓" button) only stops the spinner.
    before = len(fake.recorded())
    assert post(rasa, press(chat_id, question.result, "yes")) == 200
    assert post(rasa, press(chat_id, edit.result, "_chosen")) == 200
    assert [call.method for call in fake.recorded()[before:]] == ["answerCallbackQuery"] * 2


def test_wrong_or_missing_secret_is_refused_and_nothing_processed(fake, rasa) -> None:
    chat_id = new_chat()
    assert post(rasa, message(chat_id, PAIN), secret=None) == 403
    assert post(rasa, message(chat_id, PAIN), secret="wrong") == 403
    assert post(rasa, message(chat_id, PAIN), secret="") == 403
    assert post(rasa, message(chat_id, PAIN), secret=SECRET[:-1]) == 403
    button = press(chat_id, {"message_id": 1, "chat": {"id": chat_id, "type": "private"}}, "yes")
    assert post(rasa, button, secret="wrong") == 403
    # A barrier, not a pause: her next real update is handled in full before 200.
    assert post(rasa, message(chat_id, "/help")) == 200
    assert {call.method for call in fake.for_chat(chat_id)} == {"sendMessage"}
    assert all("I ask a few questions" in text for text in texts(fake, chat_id))
    answered = {call.params["callback_query_id"] for call in fake.recorded("answerCallbackQuery")}
    assert button["callback_query"]["id"] not in answered
    events = rasa.tracker(f"telegram:{chat_id}")["events"] or []
    assert [event["text"] for event in events if event["event"] == "user"] == ["/help"]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/start", "hip pain helper"),
        (f"/start@{BOT_USERNAME}", "hip pain helper"),
        ("/help", "I ask a few questions"),
        (f"/help@{BOT_USERNAME}", "I ask a few questions"),
        ("/restart", "start again"),
    ],
)
def test_commands(fake, rasa, command: str, expected: str) -> None:
    chat_id = new_chat()
    assert post(rasa, message(chat_id, command)) == 200
    replies = texts(fake, chat_id)
    assert replies, f"no reply to {command}"
    assert any(expected in reply for reply in replies), replies


def test_restart_in_the_middle_of_an_interview(fake, rasa) -> None:
    chat_id = new_chat()
    safety_check(fake, rasa, chat_id)
    before = len(texts(fake, chat_id))
    assert post(rasa, message(chat_id, "/restart")) == 200
    replies = texts(fake, chat_id)[before:]
    assert any("start again" in reply for reply in replies), replies
    tracker = rasa.tracker(f"telegram:{chat_id}")
    assert tracker["slots"].get("stage") in (None, [])
    assert tracker["active_loop"] in ({}, None) or not tracker["active_loop"].get("name")


def test_edited_message_gets_no_reply(fake, rasa) -> None:
    chat_id = new_chat()
    assert post(rasa, message(chat_id, PAIN, kind="edited_message")) == 200
    assert post(rasa, message(chat_id, "/help")) == 200  # a barrier: handled in full first
    assert all("I ask a few questions" in text for text in texts(fake, chat_id))
    events = rasa.tracker(f"telegram:{chat_id}")["events"] or []
    assert [event["text"] for event in events if event["event"] == "user"] == ["/help"]


def test_redelivered_update_is_handled_once(fake, rasa) -> None:
    chat_id = new_chat()
    update = message(chat_id, "/help")
    assert post(rasa, update) == 200
    first = len(fake.for_chat(chat_id))
    assert first >= 1
    assert post(rasa, update) == 200
    assert len(fake.for_chat(chat_id)) == first


def test_group_chat_gets_one_polite_refusal(fake, rasa) -> None:
    group = -new_chat()
    for text in (f"/start@{BOT_USERNAME}", PAIN):
        assert post(rasa, message(group, text, chat_type="supergroup")) == 200
    calls = fake.for_chat(group)
    assert [call.method for call in calls] == ["sendMessage", "leaveChat"]
    assert "one-to-one" in calls[0].params["text"] and f"@{BOT_USERNAME}" in calls[0].params["text"]
    events = rasa.tracker(f"telegram:{group}")["events"] or []
    assert not [event for event in events if event["event"] == "user"]  # nothing reached Rasa


def test_non_text_message_gets_a_hint(fake, rasa) -> None:
    chat_id = new_chat()
    update = message(chat_id, "")
    del update["message"]["text"]
    update["message"]["sticker"] = {"file_id": "x", "file_unique_id": "y", "width": 1, "height": 1}
    assert post(rasa, update) == 200
    assert texts(fake, chat_id) == ["Sorry, I can only read typed messages. Please type your "
                                    "answer or tap a button."]  # fmt: skip


def test_typed_intent_syntax_is_only_text(fake, rasa) -> None:
    chat_id = new_chat()
    assert post(rasa, message(chat_id, '/inform{"severity": 10}')) == 200
    latest = rasa.tracker(f"telegram:{chat_id}")["latest_message"]
    assert latest["text"] == 'inform{"severity": 10}'  # NLU read it as text, not as /intent


def test_bad_json_is_rejected(rasa) -> None:
    request = urllib.request.Request(
        rasa.webhook,
        data=b"{not json",
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=10)
    assert error.value.code == 400


def test_a_warning_sign_in_a_photo_caption_is_read(fake, rasa) -> None:
    chat_id = new_chat()
    update = message(chat_id, "")
    del update["message"]["text"]
    update["message"]["photo"] = [{"file_id": "p", "file_unique_id": "q", "width": 9, "height": 9}]
    update["message"]["caption"] = "31 weeks, hip pain, and since this morning I'm bleeding heavily"
    assert post(rasa, update) == 200
    said = texts(fake, chat_id)
    assert said and said[0].startswith("⚠️"), said  # the urgent advice first
    assert rasa.tracker(f"telegram:{chat_id}")["slots"]["red_flags"], "red flag not recorded"


def test_an_old_keyboard_answers_nothing_and_the_question_comes_again(fake, rasa) -> None:
    chat_id = new_chat()
    question = safety_check(fake, rasa, chat_id)
    # She types her answer instead of tapping; the next question has its own buttons.
    assert post(rasa, message(chat_id, "none of those")) == 200
    current = [call for call in fake.recorded("sendMessage", chat_id) if keyboard(call)][-1]
    assert current.result["message_id"] != question.result["message_id"]
    slots = rasa.tracker(f"telegram:{chat_id}")["slots"]
    asked = slots["requested_slot"]
    before = len(fake.recorded())

    # Then she taps "Yes, one of these" under the safety check, which has passed.
    assert post(rasa, press(chat_id, question.result, "yes")) == 200
    after = fake.recorded()[before:]
    assert [c.params["text"] for c in after if c.method == "sendMessage"] == [
        "That question has passed. Here it is again:"
    ]
    copy = next(call for call in after if call.method == "copyMessage")
    assert int(copy.params["message_id"]) == current.result["message_id"]
    assert keyboard(copy) == keyboard(current), "the repeated question keeps its buttons"
    removed = [int(c.params["message_id"]) for c in after if c.method == "editMessageReplyMarkup"]
    assert question.result["message_id"] in removed, "the old keyboard goes"
    assert current.result["message_id"] in removed, "the copy takes over the buttons"
    now = rasa.tracker(f"telegram:{chat_id}")["slots"]
    assert now == slots, "an old keyboard set nothing"
    assert now["requested_slot"] == asked

    # The copy's buttons answer the current question.
    data = keyboard(copy)[0][0]["callback_data"]
    bot_copy = {**current.result, "message_id": copy.result["message_id"]}
    bot_copy["reply_markup"] = copy.params["reply_markup"]
    before = len(fake.recorded())
    assert post(rasa, press(chat_id, bot_copy, data)) == 200
    assert rasa.tracker(f"telegram:{chat_id}")["slots"]["requested_slot"] != asked
