"""patches/endpoint_pool.py: the same requests and replies as Rasa's, on kept connections.

A small aiohttp server on loopback records what it was sent and on which client
connection; each test sends the same calls through Rasa's own `EndpointConfig.request`
and through the pooled one.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from rasa.utils.endpoints import ClientResponseError, EndpointConfig

from patches import endpoint_pool

RASA_REQUEST = endpoint_pool._ORIGINAL


async def _serve(seen: list[dict]):
    async def webhook(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append(
            {
                "peer": request.transport.get_extra_info("peername"),
                "path": request.path,
                "query": dict(request.query),
                "type": request.headers.get("Content-Type"),
                "x": request.headers.get("X-Clinic"),
                "auth": request.headers.get("Authorization"),
                "body": json.loads(body) if body else None,
            }
        )
        if request.path.endswith("/fail"):
            return web.Response(status=500, text="the whole tracker would be here")
        if request.path.endswith("/text"):
            return web.Response(text="not json")
        return web.json_response({"events": [], "echo": json.loads(body)})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}/webhook"


async def _calls(request, url: str, **endpoint) -> list:
    endpoint.setdefault("pool_connections", True)
    config = EndpointConfig(
        url, token="secret", headers={"X-Clinic": "hips"}, basic_auth={}, **endpoint
    )
    out = [await request(config, json={"n": n}, params={"q": str(n)}) for n in range(3)]
    out.append(await request(config, subpath="text", method="get"))
    with pytest.raises(ClientResponseError) as failed:
        await request(config, subpath="fail", json={"n": 9})
    out.append((failed.value.status, failed.value.text))
    return out


def _run(coro):
    return asyncio.run(coro)


async def _both() -> tuple[list, list, list, list]:
    rasa_seen, ours_seen = [], []
    runner, url = await _serve(rasa_seen)
    try:
        rasa = await _calls(RASA_REQUEST, url)
    finally:
        await runner.cleanup()
    runner, url = await _serve(ours_seen)
    try:
        ours = await _calls(endpoint_pool.request, url)
    finally:
        await runner.cleanup()
        endpoint_pool._close_all()
    return rasa, ours, rasa_seen, ours_seen


def test_replies_errors_and_what_the_server_receives_are_rasas():
    rasa, ours, rasa_seen, ours_seen = _run(_both())
    assert ours == rasa
    strip = [{k: v for k, v in s.items() if k != "peer"} for s in rasa_seen]
    assert [{k: v for k, v in s.items() if k != "peer"} for s in ours_seen] == strip
    assert all(s["query"].get("token") == "secret" for s in ours_seen)


def test_calls_reuse_one_connection_where_rasa_opens_one_each():
    _, _, rasa_seen, ours_seen = _run(_both())
    assert len({s["peer"] for s in rasa_seen}) == len(rasa_seen) == 5
    assert len({s["peer"] for s in ours_seen}) == 1


@pytest.mark.parametrize("switch", [False, None])
def test_without_pool_connections_true_it_is_rasas_own_request(switch):
    seen: list[dict] = []

    async def go():
        runner, url = await _serve(seen)
        try:
            return await _calls(endpoint_pool.request, url, pool_connections=switch)
        finally:
            await runner.cleanup()

    _run(go())
    assert len({s["peer"] for s in seen}) == len(seen) == 5


def test_a_new_event_loop_gets_a_new_session_and_the_old_one_is_closed():
    seen: list[dict] = []
    sessions = []

    async def once():
        runner, url = await _serve(seen)
        try:
            config = EndpointConfig(url, pool_connections=True)
            assert await endpoint_pool.request(config, json={}) == {"events": [], "echo": {}}
            sessions.append(endpoint_pool._session(config))
        finally:
            await runner.cleanup()

    try:
        _run(once())
        _run(once())
    finally:
        endpoint_pool._close_all()
    assert sessions[0] is not sessions[1]
    assert sessions[0].closed and sessions[1].closed
