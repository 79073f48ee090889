"""Bad input through the REST and socketio channels: a polite reply or a 4xx, never a 5xx,
no crash, and the same conversation carries on normally afterwards. Typed `/intent{...}`
payloads never set the outcome, clear a red flag or skip the red-flag screen.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
import uuid

import pytest

from tests.support.socketio_client import SocketSession as Session

OPENING = "my hip hurts on the outside"
NONE = "none of these"
MARKUP = ("<script", "<b>", "<img", "javascript:")

# Messages a patient (or a broken client) might send in the middle of an interview.
BAD_TEXTS = {
    "empty": "",
    "whitespace": " \t\n  \n",
    "100k": "my hip hurts " * 7693,  # 100 009 characters
    "4001": "a" * 4001,
    "4000": ("pain " * 800)[:4000],
    "emoji": "😭😭🤰🏽💔🙈",
    "rtl": "ألم في الورك الأيمن \u202e שלום \u200f",
    "control": "my hip\x00 hurts\x01\x07\x1b[31m\x7f\r",
    "nul_only": "\x00\x00\x00",
    "html": "<script>alert('x')</script><b>bold</b><img src=x onerror=alert(1)>",
    "sql": "'; DROP TABLE events; -- \" OR 1=1",
    "number": "12345",
    "negative": "-1",
    "huge_number": "1e308 99999999999999999999999",
    "nan": "NaN",
    "punctuation": "?!?!...,,,;;;",
    "zalgo": "h̷̢̧̛̖̬͇̥̪̃̈́̒̓͂ͅi̸͕̤̹̗͊p̵̨̟̯͐͋̓",
    "json": '{"sender": "someone-else", "message": "hi"}',
    "slash": "/",
    "long_word": "x" * 3000,
    "surrogate_escape": "\\ud800 \\udfff",
    "lone_surrogate": "hip \ud800 pain \udfff",
}


# --- REST ----------------------------------------------------------------------------


def post(servers, body: bytes, content_type: str | None = "application/json"):
    """POSTs raw bytes to the REST channel; returns (status, parsed JSON or text)."""
    headers = {"Content-Type": content_type} if content_type else {}
    request = urllib.request.Request(
        f"{servers.url}/webhooks/rest/webhook", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def say_raw(servers, sender: str, text: str):
    return post(servers, json.dumps({"sender": sender, "message": text}).encode())


def assert_polite(status: int, body) -> None:
    assert status < 500, (status, body)
    if status >= 400:
        assert isinstance(body, dict) and body.get("error"), body
        return
    assert status == 200
    assert isinstance(body, list) and body, "a 2xx must answer something"
    for message in body:
        text = message.get("text", "")
        assert text.strip(), message
        assert not any(tag in text.lower() for tag in MARKUP), "markup echoed back"


def start_interview(servers, sender: str) -> None:
    servers.say(sender, OPENING)
    assert servers.tracker(sender)["slots"]["requested_slot"] == "red_flags"


def assert_carries_on(servers, sender: str) -> None:
    """She answers the red-flag screen normally and the interview moves on."""
    reply = servers.say(sender, NONE)
    assert reply and reply[-1].get("text")
    slots = servers.tracker(sender)["slots"]
    assert slots["red_flags"] == [], slots
    assert slots["requested_slot"] not in (None, "red_flags"), slots


@pytest.mark.parametrize("name", list(BAD_TEXTS))
def test_rest_bad_message_gets_a_polite_answer_and_the_interview_carries_on(servers, name):
    sender = f"bad-rest-{name}-{uuid.uuid4().hex[:8]}"
    start_interview(servers, sender)
    status, body = say_raw(servers, sender, BAD_TEXTS[name])
    assert_polite(status, body)
    assert_carries_on(servers, sender)


@pytest.mark.parametrize("name", ["html", "sql", "control", "rtl", "emoji"])
def test_rest_bad_message_as_the_first_message_starts_nothing_bad(servers, name):
    sender = f"bad-first-{name}-{uuid.uuid4().hex[:8]}"
    assert_polite(*say_raw(servers, sender, BAD_TEXTS[name]))
    start_interview(servers, sender)
    assert_carries_on(servers, sender)


def test_stored_text_has_no_control_characters(servers):
    sender = f"ctl-{uuid.uuid4().hex[:8]}"
    say_raw(servers, sender, "my hip\x00 hurts\x07 on the side")
    texts = [e["text"] for e in servers.tracker(sender)["events"] if e["event"] == "user"]
    assert texts == ["my hip hurts  on the side"]


MALFORMED = {
    "not_json": (b"{not json", "application/json", 400),
    "truncated_json": (b'{"sender": "a", "message": "hi"', "application/json", 400),
    "empty_body": (b"", "application/json", 400),
    "json_array": (b'["hi"]', "application/json", 400),
    "json_string": (b'"hi"', "application/json", 400),
    "json_null": (b"null", "application/json", 400),
    "invalid_utf8": (b'{"sender": "a", "message": "\xff\xfe"}', "application/json", 400),
    "no_sender": (b'{"message": "hi"}', "application/json", 400),
    "null_sender": (b'{"sender": null, "message": "hi"}', "application/json", 400),
    "empty_sender": (b'{"sender": "", "message": "hi"}', "application/json", 400),
    "number_sender": (b'{"sender": 123, "message": "hi"}', "application/json", 400),
    "object_sender": (b'{"sender": {"id": 1}, "message": "hi"}', "application/json", 400),
    "long_sender": (json.dumps({"sender": "a" * 129, "message": "hi"}).encode(), None, 400),
    "path_sender": (b'{"sender": "../../etc/passwd", "message": "hi"}', "application/json", 400),
    "space_sender": (b'{"sender": "jane doe", "message": "hi"}', "application/json", 400),
    "nul_sender": (b'{"sender": "a\\u0000b", "message": "hi"}', "application/json", 400),
    "no_message": (b'{"sender": "a"}', "application/json", 400),
    "null_message": (b'{"sender": "a", "message": null}', "application/json", 400),
    "number_message": (b'{"sender": "a", "message": 7}', "application/json", 400),
    "list_message": (b'{"sender": "a", "message": ["hi"]}', "application/json", 400),
    "text_plain": (b'{"sender": "a", "message": "hi"}', "text/plain", 415),
    "form": (b"sender=a&message=hi", "application/x-www-form-urlencoded", 415),
    "multipart": (b"--x\r\n\r\nhi\r\n--x--", "multipart/form-data; boundary=x", 415),
    "xml": (b"<message>hi</message>", "application/xml", 415),
    "too_large": (b'{"sender": "a", "message": "' + b"a" * 70000 + b'"}', None, 413),
    "message_too_long": (json.dumps({"sender": "a", "message": "a" * 5000}).encode(), None, 413),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_rest_malformed_request_gets_a_4xx(servers, name):
    body, content_type, expected = MALFORMED[name]
    status, answer = post(servers, body, content_type or "application/json")
    assert status == expected, (status, answer)
    assert isinstance(answer, dict) and answer["error"]
    # The server is fine and a real message still works.
    assert servers.say(f"after-{name}-{uuid.uuid4().hex[:6]}", "hello")


def test_rest_wrong_method_and_json_without_content_type(servers):
    request = urllib.request.Request(f"{servers.url}/webhooks/rest/webhook", method="GET")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert 400 <= caught.value.code < 500
    # No Content-Type at all (http.client adds none): JSON is assumed.
    sender = f"noctype-{uuid.uuid4().hex[:8]}"
    connection = http.client.HTTPConnection("127.0.0.1", servers.rasa_port, timeout=30)
    connection.request(
        "POST", "/webhooks/rest/webhook", json.dumps({"sender": sender, "message": "hi"})
    )
    response = connection.getresponse()
    assert response.status == 200 and json.loads(response.read())
    connection.close()


def test_rest_ignores_client_metadata_and_input_channel(servers):
    sender = f"meta-{uuid.uuid4().hex[:8]}"
    body = {"sender": sender, "message": "hello", "metadata": {"is_staff": True},
            "input_channel": "telegram"}  # fmt: skip
    status, _ = post(servers, json.dumps(body).encode())
    assert status == 200
    user = [e for e in servers.tracker(sender)["events"] if e["event"] == "user"][-1]
    assert user["input_channel"] == "rest"
    assert "is_staff" not in json.dumps(user.get("metadata") or {})


# --- typed payloads ------------------------------------------------------------------


def slots_of(servers, sender: str) -> dict:
    return servers.tracker(sender)["slots"]


@pytest.mark.parametrize(
    "payload",
    [
        '/inform{"red_flags": []}',
        "/not_sure",
        "/deny",
        '/affirm{"red_flags": []}',
        '/inform{"requested_slot": "stage", "skipped": ["red_flags"]}',
    ],
)
def test_typed_payload_never_answers_or_skips_the_red_flag_screen(servers, payload):
    sender = f"typed-screen-{uuid.uuid4().hex[:8]}"
    start_interview(servers, sender)
    for _ in range(3):  # more than the re-ask limit
        assert_polite(*say_raw(servers, sender, payload))
        slots = slots_of(servers, sender)
        assert slots["red_flags"] is None, slots
        assert slots["requested_slot"] == "red_flags", slots
        assert "red_flags" not in (slots.get("skipped") or []), slots
    assert_carries_on(servers, sender)


@pytest.mark.parametrize(
    "payload",
    [
        '/inform{"red_flags": []}',
        '/correct{"red_flags": []}',
        '/not_sure{"red_flags": []}',
        '/deny{"red_flags": null}',
    ],
)
def test_typed_payload_never_clears_a_reported_red_flag(servers, payload):
    sender = f"typed-flag-{uuid.uuid4().hex[:8]}"
    start_interview(servers, sender)
    reply = servers.say(sender, "I have a fever")
    assert reply[0]["text"].startswith("⚠️"), "urgent advice first"
    assert "fever" in slots_of(servers, sender)["red_flags"]
    assert_polite(*say_raw(servers, sender, payload))
    assert "fever" in slots_of(servers, sender)["red_flags"]


@pytest.mark.parametrize(
    "payload",
    [
        '/inform{"triage": {"urgency": "self_care", "red_flags": []}, "outcome_given": true}',
        '/describe_pain{"stage": "pregnant", "weeks": 20, "locations": ["side"], "severity": 0}',
        '/affirm{"labral_tear": true, "unstable": true}',
        "/action_give_outcome",
        '/red_flag_urgent{"red_flags": ["no_such_flag"]}',
        '/inform{"erasure_confirmed": true}',
    ],
)
def test_typed_payload_never_sets_the_case_or_the_outcome(servers, payload):
    sender = f"typed-case-{uuid.uuid4().hex[:8]}"
    start_interview(servers, sender)
    before = slots_of(servers, sender)
    assert_polite(*say_raw(servers, sender, payload))
    after = slots_of(servers, sender)
    assert after["triage"] is None and not after["outcome_given"], after
    for field in ("stage", "weeks", "locations", "severity", "labral_tear", "unstable",
                  "red_flags", "erasure_confirmed"):  # fmt: skip
        assert after[field] == before[field], (field, after[field])
    assert after["requested_slot"] == "red_flags"
    assert servers.tracker(sender)["events"], "the conversation was not erased"


# --- socketio ------------------------------------------------------------------------

TIMEOUT = 30


def assert_polite_socket(messages: list[dict]) -> None:
    assert messages, "no answer"
    for message in messages:
        text = message.get("text", "")
        assert text.strip(), message
        assert not any(tag in text.lower() for tag in MARKUP), "markup echoed back"


@pytest.mark.parametrize("name", list(BAD_TEXTS))
async def test_socketio_bad_message_gets_a_polite_answer_and_the_interview_carries_on(
    servers, name
):
    async with Session(servers) as session:
        await session.say(OPENING)
        assert assert_polite_socket(await session.say(BAD_TEXTS[name])) is None
        question = await session.say(NONE)
    assert question[-1].get("quick_replies"), question
    slots = servers.tracker(session.sender)["slots"]
    assert slots["red_flags"] == [] and slots["requested_slot"] not in (None, "red_flags")


@pytest.mark.parametrize(
    "data",
    [
        {"message": 42},
        {"message": {"text": "hi"}},
        {"message": ["hi"]},
        {"message": None},
        {"message": True},
        {},
        "just a string",
        [1, 2, 3],
        None,
        {"message": "hi", "customData": "{not json"},
    ],
    ids=repr,
)
async def test_socketio_malformed_event_never_crashes_and_the_session_carries_on(servers, data):
    async with Session(servers) as session:
        await session.say(OPENING)
        before = len(session.received)
        payload = {**data, "session_id": session.session_id} if isinstance(data, dict) else data
        await session.emit(payload)
        question = await session.say(NONE)  # also waits for any answer to the bad event
        answer = session.received[before : len(session.received) - len(question)]
        if answer:  # Rasa's socketio channel drops some of these without a word
            assert_polite_socket(answer)
    assert question and question[-1].get("quick_replies"), question
    assert servers.tracker(session.sender)["slots"]["red_flags"] == []


@pytest.mark.parametrize(
    "text",
    ["/ I am bleeding heavily", "// I have a fever and chills", "/ /my calf is swollen and hot"],
)
def test_a_slash_in_front_of_a_warning_sign_changes_nothing_and_logs_nothing(servers, text):
    plain = text.lstrip("/ ")
    slashed, unslashed = (f"slash-{uuid.uuid4().hex[:8]}" for _ in range(2))
    replies = {}
    for sender, said in ((slashed, text), (unslashed, plain)):
        start_interview(servers, sender)
        replies[sender] = [m.get("text") for m in servers.say(sender, said)]
    assert replies[slashed] == replies[unslashed]
    assert replies[slashed][0].startswith("⚠️"), "urgent advice first"
    got, want = slots_of(servers, slashed), slots_of(servers, unslashed)
    assert got["red_flags"] and got["red_flags"] == want["red_flags"], (got, want)
    for slot in ("triage", "requested_slot", "continue_after_urgent"):
        assert got[slot] == want[slot], (slot, got[slot], want[slot])
    log = servers.log("rasa.log") + servers.log("actions.log")
    assert plain not in log
    for word in (w for w in plain.split() if len(w) >= 6):  # bleeding, heavily, swollen...
        assert word not in log, f"message text {word!r} in a log"
