"""The website widget's channel (channels/socketio.py) at the protocol level, on the
shared app: server-issued ids scoped to the channel, the clinic's origins only.

python-socketio's AsyncClient (5.9.0 / python-engineio 4.12.3, as pinned) speaks the same
Socket.IO 5 / Engine.IO 4 protocol as the widget's socket.io-client 4.x. The limits
(metadata, messages per socket) are tested on the channel itself:
tests/test_socketio_channel.py.
"""

import uuid

import pytest
import socketio

from tests.support.socketio_client import SocketSession as Session

OPENING = "im 31 weeks pregant and the outside of my right hip burns, worse at night"


def said(servers, conversation_id: str) -> list[str]:
    events = servers.tracker(conversation_id)["events"] or []
    return [e["text"] for e in events if e["event"] == "user"]


async def test_session_request_is_confirmed_with_an_id_the_server_issued(servers):
    wanted = uuid.uuid4().hex
    async with Session(servers, wanted) as session:
        assert session.session_id == wanted
        assert session.sender == f"web:{wanted}"


async def test_session_request_without_id_gets_a_new_one(servers):
    async with Session(servers, None) as session:
        assert isinstance(session.session_id, str) and len(session.session_id) == 32


@pytest.mark.parametrize(
    "requested",
    ["12345678", "x" * 10_000, "telegram:12345678", "web:" + "a" * 32, "A" * 32, "", 42],
    ids=["telegram-chat-id", "10000-chars", "scoped-telegram", "scoped-web", "upper", "empty",
         "number"],
)  # fmt: skip
async def test_an_id_the_server_could_not_have_issued_is_never_confirmed(servers, requested):
    async with Session(servers, requested) as session:
        assert session.session_id != requested
        assert len(session.session_id) == 32 and int(session.session_id, 16) >= 0


async def test_a_web_client_cannot_join_another_channels_conversation(servers):
    """The hole: a REST sender or a Telegram chat id named in session_request."""
    victim = f"rest-patient-{uuid.uuid4().hex[:8]}"
    servers.say(victim, OPENING)
    chat_id = str(uuid.uuid4().int % 10**9)
    for requested in (victim, chat_id, f"telegram:{chat_id}"):
        async with Session(servers, requested) as intruder:
            reply = await intruder.say("delete my data")
            assert intruder.sender.startswith("web:") and intruder.sender != f"web:{requested}"
            assert all("31 weeks" not in m.get("text", "") for m in reply)
            await intruder.say_erasing("yes")
    assert said(servers, victim) == [OPENING], "her conversation was touched"


async def test_message_gets_bot_uttered_with_buttons(servers):
    async with Session(servers, uuid.uuid4().hex) as session:
        messages = await session.say(OPENING)
    question = messages[-1]
    assert question["text"].strip()
    assert question["quick_replies"], question
    for button in question["quick_replies"]:
        assert set(button) == {"content_type", "title", "payload"}, button
        assert button["content_type"] == "text"
        assert isinstance(button["title"], str) and button["title"]
        assert isinstance(button["payload"], str) and button["payload"]
    # The conversation is keyed by the session id, not by the socket: what the widget relies
    # on to continue after a page reload.
    assert said(servers, session.sender) == [OPENING]


async def test_reconnecting_with_the_same_session_id_continues_the_conversation(servers):
    session_id = uuid.uuid4().hex
    async with Session(servers, session_id) as first:
        first_question = (await first.say(OPENING))[-1]
    answer = first_question["quick_replies"][0]["payload"]
    async with Session(servers, session_id) as second:  # a page reload: a new socket
        next_question = (await second.say(answer))[-1]
    assert next_question["text"] != first_question["text"]
    assert said(servers, f"web:{session_id}") == [OPENING, answer]


async def test_message_without_or_with_another_session_id_is_ignored(servers):
    async with Session(servers, uuid.uuid4().hex) as session, Session(servers) as other:
        assert await session.call({"message": "hello"}) == {
            "accepted": False, "reason": "wrong session"}  # fmt: skip
        ack = await session.call({"message": "hello", "session_id": other.session_id})
        assert ack["accepted"] is False
        # A message of hers after it is answered; the others never were.
        reply = await session.say(OPENING)
        assert reply and session.received == reply
        assert said(servers, session.sender) == [OPENING]
        assert not other.received and not said(servers, other.sender)


async def test_only_the_clinics_origin_may_open_a_socket(servers):
    with pytest.raises(socketio.exceptions.ConnectionError):
        async with Session(servers, headers={"Origin": "https://evil.example"}):
            pass
    async with Session(servers, headers={"Origin": servers.widget_origin}) as session:
        assert len(session.session_id) == 32
