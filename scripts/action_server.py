"""Starts the Rasa SDK action server bound to loopback by default.

`rasa run actions` binds 0.0.0.0 (every interface) and allows CORS from anywhere.
This binds `ACTIONS_HOST` (default 127.0.0.1) and `ACTIONS_PORT` (default 5055) and
allows no CORS origin: only the Rasa server calls it. In a container, set
`ACTIONS_HOST=0.0.0.0` and keep the port on an internal network only.

    .venv/bin/python scripts/action_server.py [--host H] [--port P] [-v|--debug]
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rasa_sdk.endpoint import create_argument_parser  # noqa: E402

logger = logging.getLogger("scripts.action_server")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5055


def parse_args(argv: List[str] | None = None) -> argparse.Namespace:
    """Rasa SDK's own options, plus --host; defaults from ACTIONS_HOST / ACTIONS_PORT."""
    parser = create_argument_parser()
    parser.add_argument(
        "--host",
        default=os.environ.get("ACTIONS_HOST") or DEFAULT_HOST,
        help="interface to bind (default: ACTIONS_HOST or 127.0.0.1)",
    )
    parser.set_defaults(actions="actions", port=int(os.environ.get("ACTIONS_PORT") or DEFAULT_PORT))
    return parser.parse_args(argv)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: List[str] | None = None) -> None:
    """Runs the action server until it is stopped."""
    args = parse_args(argv)
    # rasa_sdk.endpoint.run binds SANIC_HOST (default 0.0.0.0).
    os.environ["SANIC_HOST"] = args.host
    # Keep idle connections open longer than the Rasa server's client does (aiohttp:
    # 15 s), so the client, not the server, closes them: no request is ever written to
    # a connection the server has just closed.
    os.environ.setdefault("SANIC_KEEP_ALIVE_TIMEOUT", "75")
    if not is_loopback(args.host):
        logging.basicConfig()
        logger.warning(
            "The action server listens on %s: keep that port on an internal network.",
            args.host,
        )
    serve(args)


def serve(args: argparse.Namespace) -> None:
    """`rasa_sdk.endpoint.run`, with errors that name no message text (see redact)."""
    from rasa_sdk import utils
    from rasa_sdk.constants import APPLICATION_ROOT_LOGGER_NAME
    from rasa_sdk.endpoint import create_app, create_ssl_context
    from rasa_sdk.plugin import plugin_manager

    utils.configure_colored_logging(args.loglevel)
    utils.configure_file_logging(
        logging.getLogger(APPLICATION_ROOT_LOGGER_NAME),
        args.log_file,
        args.loglevel,
        args.logging_config_file,
    )
    utils.update_sanic_log_level()
    app = create_app(args.actions, cors_origins=args.cors, auto_reload=args.auto_reload)
    redact(app)
    plugin_manager().hook.attach_sanic_app_extensions(app=app)
    ssl_context = create_ssl_context(args.ssl_certificate, args.ssl_keyfile, args.ssl_password)
    app.run(
        os.environ["SANIC_HOST"], args.port, ssl=ssl_context,
        workers=utils.number_of_sanic_workers(),
    )  # fmt: skip


def redact(app) -> None:
    """Swaps Rasa SDK's error handler for one that names no message text.

    Rasa SDK's logs the exception's message and answers with the whole request (her
    conversation): this logs and answers the action's name and the exception's type.
    """
    from sanic import response

    async def failed(request, exception: Exception):
        call = request.json if isinstance(request.json, dict) else {}
        name = str(call.get("next_action") or "?")[:64]
        where = ""
        tb = exception.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None:
            where = f" at {Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}"
        logger.error("Action %r failed: %s%s.", name, type(exception).__name__, where)
        return response.json({"error": type(exception).__name__, "action_name": name}, 500)

    app.error_handler.add(Exception, failed)


if __name__ == "__main__":
    main()
