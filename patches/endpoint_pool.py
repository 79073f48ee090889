"""HTTP calls to an endpoint reuse pooled connections instead of opening one per call.

Patches `rasa.utils.endpoints.EndpointConfig.request` (checked against Rasa 3.6.21).
Rasa opens a new `aiohttp.ClientSession`, with its own connector and TCP connection,
for every request to the action server, and closes it after the reply: in the profile
at 32 conversations, creating and closing those was about a tenth of a turn's CPU and
the HTTP client a quarter of it (issue 16). This sends the same request (headers,
parameters, token, compression, certificate, timeout, errors and reply exactly as
Rasa's) through one session per endpoint setting and event loop, whose connections
are kept alive for `KEEPALIVE_S` seconds, less than the action server's own keep-alive
(Sanic's 5 s), so the client gives up an idle connection before the server does. A
connection the server closed anyway is a lost connection, which degraded mode sends
once more (patches/degraded_mode.py).

Opt-in: only an endpoint with `pool_connections: true` in its endpoints file is pooled;
every other gets Rasa's own request (`python -m bench.ab_endpoints --key
pool_connections --a false --b true` measures the difference). It is off in the shipped
files until a CI failure seen once with it on (a widget turn over long polling that
never completed) is understood. A session whose event loop has gone (a test's loop, a restarted
server) is closed and replaced; the rest are closed when the process exits.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import ssl
from typing import Any, Dict, Tuple

import aiohttp
from aiohttp.client_exceptions import ContentTypeError
from rasa.shared.exceptions import FileNotFoundException
from rasa.utils import endpoints
from rasa.utils.endpoints import ClientResponseError, EndpointConfig, concat_url

logger = logging.getLogger(__name__)

KEEPALIVE_S = 3.0  # < the action server's (Sanic 21.12) keep-alive timeout of 5 s
SWITCH = "pool_connections"  # endpoints.yml key; only true pools (opt-in)

_ORIGINAL = EndpointConfig.request
_SESSIONS: Dict[Tuple[Any, ...], Tuple[asyncio.AbstractEventLoop, aiohttp.ClientSession]] = {}
_SSL: Dict[str, ssl.SSLContext] = {}


def _key(endpoint: EndpointConfig) -> Tuple[Any, ...]:
    """What a session is made of: its default headers and basic auth."""
    auth = endpoint.basic_auth or {}
    return (
        tuple(sorted((str(k), str(v)) for k, v in (endpoint.headers or {}).items())),
        auth.get("username"),
        auth.get("password"),
    )


def _close_now(session: aiohttp.ClientSession) -> None:
    """Closes a session's connections without its loop (which may have gone)."""
    connector = session.connector
    if connector is None or connector.closed:
        return
    try:
        connector.close()
    except Exception:  # noqa: BLE001 - a closed loop's transports may refuse; they are gone
        logger.debug("A pooled connection could not be closed cleanly.")


def _session(endpoint: EndpointConfig) -> aiohttp.ClientSession:
    """This loop's session for the endpoint's headers and auth, made on first use."""
    loop = asyncio.get_running_loop()
    key = _key(endpoint)
    held = _SESSIONS.get(key)
    if held is not None:
        held_loop, session = held
        if held_loop is loop and not session.closed:
            return session
        _close_now(session)
    auth = None
    if endpoint.basic_auth:
        auth = aiohttp.BasicAuth(endpoint.basic_auth["username"], endpoint.basic_auth["password"])
    session = aiohttp.ClientSession(
        headers=endpoint.headers,
        auth=auth,
        timeout=aiohttp.ClientTimeout(total=endpoints.DEFAULT_REQUEST_TIMEOUT),
        connector=aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_S),
    )
    _SESSIONS[key] = (loop, session)
    return session


def _ssl_context(cafile: str | None) -> ssl.SSLContext | None:
    """The certificate's context, read once per file (Rasa reads it on every call)."""
    if not cafile:
        return None
    if cafile not in _SSL:
        try:
            _SSL[cafile] = ssl.create_default_context(cafile=cafile)
        except FileNotFoundError as e:
            raise FileNotFoundException(
                f"Failed to find certificate file, '{os.path.abspath(cafile)}' does not exist."
            ) from e
    return _SSL[cafile]


async def request(
    self: EndpointConfig,
    method: str = "post",
    subpath: str | None = None,
    content_type: str | None = "application/json",
    compress: bool = False,
    **kwargs: Any,
) -> Any | None:
    """Rasa's `EndpointConfig.request`, on a pooled session."""
    if self.kwargs.get(SWITCH) is not True:
        return await _ORIGINAL(self, method, subpath, content_type, compress, **kwargs)
    headers = {}
    if content_type:
        headers["Content-Type"] = content_type
    if "headers" in kwargs:
        headers.update(kwargs.pop("headers"))
    if self.headers:
        headers.update(self.headers)
    url = concat_url(self.url, subpath)
    sslcontext = _ssl_context(self.cafile)
    async with _session(self).request(
        method,
        url,
        headers=headers,
        params=self.combine_parameters(kwargs),
        compress=compress,
        ssl=sslcontext,
        **kwargs,
    ) as response:
        if response.status >= 400:
            raise ClientResponseError(
                response.status, response.reason, await response.content.read()
            )
        try:
            return await response.json()
        except ContentTypeError:
            return None


def _close_all() -> None:
    for _, session in list(_SESSIONS.values()):
        _close_now(session)
    _SESSIONS.clear()


def install() -> None:
    """Pools the connections of endpoint requests (idempotent)."""
    if EndpointConfig.request is not request:
        EndpointConfig.request = request  # type: ignore[method-assign]
        atexit.register(_close_all)
