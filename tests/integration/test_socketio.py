"""Rasa's socketio channel at the protocol level, as the website widget uses it.

python-socketio's AsyncClient (5.9.0 / python-engineio 4.12.3, as pinned) speaks the same
Socket.IO 5 / Engine.IO 4 protocol as the widget's socket.io-client 4.x.
"""

import uuid

from tests.support.socketio_client import SocketSession as Session

OPENING = "im 31 weeks pregant and the outside of my right hip burns, worse at night"


async def test_session_request_is_confirmed_with_the_given_id(servers):
    wanted = uuid.uuid4().hex
    async with Session(servers, wanted) as session:
        assert session.session_id == wanted


async def test_session_request_without_id_gets_a_new_one(servers):
    async with Session(servers, None) as session:
        assert isinstance(session.session_id, str) and len(session.session_id) == 32


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
    events = servers.tracker(session.sender)["events"]
    said = [e["text"] for e in events if e["event"] == "user"]
    assert said == [OPENING]


async def test_reconnecting_with_the_same_session_id_continues_the_conversation(servers):
    session_id = uuid.uuid4().hex
    async with Session(servers, session_id) as first:
        first_question = (await first.say(OPENING))[-1]
    answer = first_question["quick_replies"][0]["payload"]
    async with Session(servers, session_id) as second:  # a page reload: a new socket
        next_question = (await second.say(answer))[-1]
    assert next_question["text"] != first_question["text"]
    said = [e["text"] for e in servers.tracker(session_id)["events"] if e["event"] == "user"]
    assert said == [OPENING, answer]


async def test_message_without_session_id_is_ignored(servers):
    async with Session(servers, uuid.uuid4().hex) as session:
        await session.emit({"message": "hello"})
        # A message of hers after it is answered; the one without an id never was.
        reply = await session.say(OPENING)
        assert reply and session.received == reply
        events = servers.tracker(session.sender)["events"]
        assert [e["text"] for e in events if e["event"] == "user"] == [OPENING]
