"""A socket.io client of Rasa's socketio channel, as the website widget speaks it.

python-socketio's AsyncClient (5.9.0 / python-engineio 4.12.3, as pinned) speaks the
same Socket.IO 5 / Engine.IO 4 protocol as the widget's socket.io-client 4.x. A turn is
over when the tracker says so (`Servers.turn_messages`); the client then waits until
exactly those messages have arrived: no quiet periods.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

import socketio

from channels import ids
from channels.text import MAX_MESSAGE_CHARS, as_read, clean_text

TIMEOUT = 30.0


@functools.lru_cache(maxsize=1)
def _domain() -> Any:
    from rasa.shared.core.domain import Domain

    from tests.support.servers import ROOT

    return Domain.load(str(ROOT / "domain.yml"))


def as_stored(text: str) -> str:
    """Her message as the tracker stores it: stripped by Rasa, then the message guard."""
    return as_read(clean_text(text.strip()), _domain())


class SocketSession:
    """One socket.io connection that joined a conversation with `session_request`."""

    def __init__(
        self, servers: Any, session_id: str | None = None, headers: dict | None = None
    ) -> None:
        self.servers = servers
        self.requested_id = session_id
        self.headers = headers or {}
        self.session_id: str | None = None
        self.client = socketio.AsyncClient(reconnection=False)
        self.received: list[dict] = []
        self.confirmed: asyncio.Future = asyncio.get_running_loop().create_future()
        self.client.on("session_confirm", self._on_confirm)
        self.client.on("bot_uttered", self.received.append)

    async def _on_confirm(self, data: Any) -> None:
        if not self.confirmed.done():
            self.confirmed.set_result(data)

    async def __aenter__(self) -> SocketSession:
        await self.client.connect(
            self.servers.url,
            socketio_path="/socket.io",
            transports=["websocket"],
            headers=self.headers,
        )
        await self.client.emit("session_request", {"session_id": self.requested_id})
        self.session_id = await asyncio.wait_for(self.confirmed, TIMEOUT)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.client.disconnect()

    @property
    def sender(self) -> str:
        """The conversation id her messages are stored under (`web:<session id>`)."""
        return ids.scoped(ids.WEB, self.session_id)

    async def emit(self, data: Any) -> None:
        """Sends raw `user_uttered` data (malformed on purpose, in some tests)."""
        await self.client.emit("user_uttered", data)

    async def call(self, data: Any) -> Any:
        """Sends `user_uttered` data and returns the server's acknowledgement."""
        return await self.client.call("user_uttered", data, timeout=TIMEOUT)

    async def _arrived(self, done: Any) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"bot messages did not arrive; got {self.received[-3:]}")
            await asyncio.sleep(0.05)

    async def say_erasing(self, text: str) -> list[dict]:
        """Sends a message whose turn erases the conversation (no tracker to wait on):
        returns the bot's first message after it."""
        before = len(self.received)
        await self.emit({"message": text, "session_id": self.session_id})
        await self._arrived(lambda: len(self.received) > before)
        return self.received[before : before + 1]

    async def say(self, text: str) -> list[dict]:
        """Sends a message; returns the bot's messages of that turn, once all arrived."""
        before = len(self.received)
        await self.emit({"message": text, "session_id": self.session_id})
        stored = as_stored(text)
        if not stored.strip() or len(stored) > MAX_MESSAGE_CHARS:
            # The message guard answers once and stores nothing.
            await self._arrived(lambda: len(self.received) > before)
            return self.received[before : before + 1]
        mine = await asyncio.to_thread(self.servers.turn_messages, self.sender, stored, TIMEOUT)
        wanted = [m.get("text") for m in mine]
        count = len(mine)
        # Her turn is the conversation's latest: its messages are the last to arrive.
        await self._arrived(
            lambda: (
                len(self.received) - before >= count
                and [m.get("text") for m in self.received[len(self.received) - count :]] == wanted
            )
        )
        return self.received[len(self.received) - count :]
