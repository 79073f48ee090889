"""Health check of the Rasa server: `GET /webhooks/health/`.

Registered in credentials.yml as `channels.health.HealthInput:` (no arguments).

Answers 200 `{"status": "ok", "tracker_store": "ok", "lock_store": "ok"}` when a
model is loaded, the conversation database answers the store's own cheap query
(`ClinicTrackerStore.check()`) and, with a Redis lock store (production), Redis
answers a PING; else 503 `{"status": "error", ..., "error": ...}`. It also answers
503 when the store in use is not the shipped one (Rasa silently uses memory when a
custom store's module path fails to import) or when Rasa's fail-safe wrapper has
already kept a conversation in memory. It never touches conversations.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Dict

from rasa.core.channels.channel import InputChannel, UserMessage
from rasa.core.tracker_store import FailSafeTrackerStore
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from store.tracker_store import describe_error, underlying_store

logger = logging.getLogger(__name__)

CHECK_TIMEOUT = 5.0


def _fell_back_to_memory(store: Any) -> bool:
    for _ in range(5):
        if isinstance(store, FailSafeTrackerStore) and store._fallback_tracker_store is not None:
            return True
        store = getattr(store, "_tracker_store", None)
        if store is None:
            break
    return False


async def tracker_store_status(agent: Any) -> str | None:
    """None if the agent's tracker store is the shipped store and answers, else the problem."""
    if agent is None or getattr(agent, "tracker_store", None) is None:
        return "the model and tracker store are not loaded yet"
    wrapper = agent.tracker_store
    store = underlying_store(wrapper)
    if _fell_back_to_memory(wrapper):
        return "the tracker store failed earlier and conversations were kept in memory"
    if not callable(getattr(store, "check", None)):
        return (
            f"the tracker store is {type(store).__name__}, not the configured SQL store "
            "(conversations would be lost on restart)"
        )
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.run_in_executor(None, store.check), CHECK_TIMEOUT)
    except asyncio.TimeoutError:
        return f"the tracker database did not answer within {CHECK_TIMEOUT:g} s"
    except Exception as error:
        return describe_error(error)
    return None


async def lock_store_status(agent: Any) -> str | None:
    """None if the lock store is in memory or its Redis answers a PING, else the problem."""
    from rasa.core.lock_store import RedisLockStore

    lock_store = getattr(agent, "lock_store", None)
    if not isinstance(lock_store, RedisLockStore):
        return None
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.run_in_executor(None, lock_store.red.ping), CHECK_TIMEOUT)
    except asyncio.TimeoutError:
        return f"the Redis lock store did not answer within {CHECK_TIMEOUT:g} s"
    except Exception as error:
        return f"the Redis lock store is unreachable ({type(error).__name__})"
    return None


class HealthInput(InputChannel):
    """GET /webhooks/health/: 200 when the conversation database answers, else 503."""

    @classmethod
    def name(cls) -> str:
        return "health"

    @classmethod
    def from_credentials(cls, credentials: Dict[str, Any] | None) -> InputChannel:
        return cls()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """The health route; it never touches conversations."""
        health = Blueprint("clinic_health", __name__)

        @health.route("/", methods=["GET"])
        async def check(request: Request) -> HTTPResponse:
            agent = getattr(request.app.ctx, "agent", None)
            problem = await tracker_store_status(agent)
            body = {"status": "error", "tracker_store": "error", "error": problem}
            if problem is None:
                lock_problem = await lock_store_status(agent)
                body = {"status": "error", "tracker_store": "ok", "lock_store": "error"}
                if lock_problem is not None:
                    body["error"] = lock_problem
                elif not agent.is_ready():
                    body.update(lock_store="ok", error="no model loaded")
                else:
                    ok = {"status": "ok", "tracker_store": "ok", "lock_store": "ok"}
                    return response.json(ok)
            logger.error("Health check failed: %s", body["error"])
            return response.json(body, status=503)

        return health
