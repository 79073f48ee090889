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
    from rasa_sdk.__main__ import main_from_args

    if not is_loopback(args.host):
        logging.basicConfig()
        logger.warning(
            "The action server listens on %s: keep that port on an internal network.",
            args.host,
        )
    main_from_args(args)


if __name__ == "__main__":
    main()
