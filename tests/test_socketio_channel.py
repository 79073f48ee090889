"""The website widget's channel (channels/socketio.py) on its own: a Sanic app on a free
loopback port with only this channel and a recording stand-in for Rasa, so the limits
are tested with the shipped settings (the shared app raises the message limit for its
scripted patients). Ids and origins are also tested on the real app:
tests/integration/test_socketio.py.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import socketio
from sanic import Sanic

from channels import ids
from channels.socketio import BAD_METADATA, TOO_FAST, ClinicSocketIOInput, TokenBucket
from tests.support.ports import free_port

ORIGIN = "http://127.0.0.1:8080"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_the_burst_then_the_rate():
    clock = Clock()
    bucket = TokenBucket(rate=1.0, burst=5, clock=clock)
    assert [bucket.take() for _ in range(7)] == [True] * 5 + [False] * 2
    assert bucket.tell_once() and not bucket.tell_once()  # one polite message per episode
    clock.now += 1.0
    assert bucket.take() and not bucket.take()
    assert bucket.tell_once()  # a message went through since: tell her again
    clock.now += 100
    assert sum(bucket.take() for _ in range(10)) == 5  # never more than the burst saved up


def test_shipped_settings_and_origins_from_the_environment(monkeypatch):
    monkeypatch.delenv("WEB_ORIGINS", raising=False)
    monkeypatch.delenv("WEB_MESSAGE_RATE", raising=False)
    monkeypatch.delenv("WEB_MESSAGE_BURST", raising=False)
    channel = ClinicSocketIOInput.from_credentials({})
    assert channel.origins == ["http://127.0.0.1:8080", "http://localhost:8080"]
    assert (channel.message_rate, channel.message_burst, channel.max_metadata_bytes) == (1, 5, 2048)
    assert channel.metadata_keys == frozenset()
    monkeypatch.setenv("WEB_ORIGINS", "https://clinic.example, https://www.clinic.example/")
    channel = ClinicSocketIOInput.from_credentials({})
    assert channel.origins == ["https://clinic.example", "https://www.clinic.example"]
    channel = ClinicSocketIOInput.from_credentials({"cors_allowed_origins": ""})
    assert channel.origins == []  # none configured: no browser page may connect
    with pytest.raises(ValueError):
        ClinicSocketIOInput.from_credentials({"message_rate": "fast"})


@pytest.mark.parametrize(
    ("requested", "kept"),
    [
        ("0123456789abcdef0123456789abcdef", True),
        ("12345678", False),
        ("0123456789ABCDEF0123456789ABCDEF", False),
        ("0123456789abcdef0123456789abcdef0", False),
        ("x" * 10_000, False),
        (None, False),
        (12345678, False),
    ],
)
def test_web_ids_are_only_those_the_server_issues(requested, kept):
    confirmed = ids.web_id(requested)
    assert (confirmed == requested) is kept
    assert len(confirmed) == 32 and ids.WEB_ID.match(confirmed)


class Recorder:
    """Stands in for Rasa: records each message and answers "got it"."""

    def __init__(self) -> None:
        self.messages: list = []

    async def __call__(self, message) -> None:
        self.messages.append(message)
        await message.output_channel.send_text_message(message.sender_id, "got it")


@pytest.fixture
async def channel_app(monkeypatch):
    for name in ("WEB_ORIGINS", "WEB_MESSAGE_RATE", "WEB_MESSAGE_BURST"):
        monkeypatch.delenv(name, raising=False)
    # Sanic rewrites its HTTP protocol class at start-up; in test mode it starts again
    # from the original each time, so several apps can start in one process.
    monkeypatch.setattr(Sanic, "test_mode", True)
    channel = ClinicSocketIOInput.from_credentials({"cors_allowed_origins": ORIGIN})
    recorder = Recorder()
    app = Sanic(f"channel_test_{uuid.uuid4().hex[:8]}")
    app.blueprint(channel.blueprint(recorder), url_prefix="/webhooks/socketio")
    port = free_port()
    server = await app.create_server(
        host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
    )
    await server.startup()
    await server.after_start()
    yield f"http://127.0.0.1:{port}", recorder
    await server.before_stop()
    await server.close()


class Client:
    def __init__(self, url: str, origin: str | None = ORIGIN) -> None:
        self.url = url
        self.origin = origin
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: list[dict] = []
        self.sio.on("bot_uttered", self.received.append)
        self.confirmed: asyncio.Future = asyncio.get_running_loop().create_future()
        self.sio.on("session_confirm", lambda data: self.confirmed.set_result(data))

    async def __aenter__(self) -> Client:
        headers = {"Origin": self.origin} if self.origin else {}
        await self.sio.connect(self.url, transports=["websocket"], headers=headers)
        await self.sio.emit("session_request", {"session_id": None})
        self.session_id = await asyncio.wait_for(self.confirmed, 10)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.sio.disconnect()

    async def send(self, text: str, **extra) -> dict:
        data = {"message": text, "session_id": self.session_id, **extra}
        return await self.sio.call("user_uttered", data, timeout=10)


async def test_a_flood_from_one_socket_gets_one_polite_message_and_nothing_stored(channel_app):
    url, recorder = channel_app
    async with Client(url) as client:
        acks = await asyncio.gather(*(client.send(f"message {i}") for i in range(40)))
        accepted = [i for i, ack in enumerate(acks) if ack["accepted"]]
        refused = [ack for ack in acks if not ack["accepted"]]
        # The burst of 5 at once, and at most a few more as the seconds of the flood pass.
        assert 5 <= len(accepted) <= 8, acks
        assert refused and all(ack["reason"] == "too fast" for ack in refused)
        stored = [m.text for m in recorder.messages]
        assert sorted(stored) == sorted(f"message {i}" for i in accepted)
        polite = [m for m in client.received if m.get("text") == TOO_FAST]
        assert len(polite) == 1, client.received
    async with Client(url) as other:  # per socket: another patient is not held up
        assert (await other.send("hello"))["accepted"] is True


async def test_metadata_is_capped_and_only_known_keys_are_kept(channel_app):
    url, recorder = channel_app
    async with Client(url) as client:
        ack = await client.send("my hip hurts", metadata={"blob": "x" * 900_000})
        assert ack == {"accepted": False, "reason": "unreadable"}
        assert not recorder.messages
        assert client.received[-1]["text"] == BAD_METADATA
        ack = await client.send("my hip hurts", metadata={"utm": "ad", "name": "Anna"})
        assert ack["accepted"] is True
        assert recorder.messages[-1].metadata is None  # no key is kept by default
        ack = await client.send("again", metadata=json.dumps({"a": 1}))
        assert ack["accepted"] is True


async def test_messages_are_scoped_to_the_web_conversation_the_server_issued(channel_app):
    url, recorder = channel_app
    async with Client(url) as client:
        assert (await client.send("hello"))["accepted"] is True
    assert recorder.messages[-1].sender_id == f"web:{client.session_id}"
    assert recorder.messages[-1].input_channel == "socketio"


async def test_other_origins_cannot_connect(channel_app):
    url, _ = channel_app
    with pytest.raises(socketio.exceptions.ConnectionError):
        async with Client(url, origin="https://evil.example"):
            pass
    async with Client(url, origin=None) as client:  # not a browser page: no Origin header
        assert len(client.session_id) == 32
