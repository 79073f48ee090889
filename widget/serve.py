"""Serves the demo clinic page and the chat widget on loopback (stdlib only).

    /                                 widget/demo/ (index.html gets the Rasa URL filled in)
    /widget/widget.js, widget.css     widget/src/
    /widget/vendor/socket.io.min.js   widget/node_modules/socket.io-client/dist/

Usage: python widget/serve.py [--port N] [--rasa-url URL]
Port from --port, else WIDGET_PORT, else 8080; Rasa URL from --rasa-url, else RASA_URL,
else http://127.0.0.1:5005. Bound to 127.0.0.1 only: this is for development and tests, a
clinic serves widget/src and the vendored client from its own web server.
"""

from __future__ import annotations

import argparse
import json
import os
import posixpath
import sys
import urllib.parse
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLIENT_DIST = HERE / "node_modules" / "socket.io-client" / "dist"
ROUTES = (
    ("/widget/vendor/", CLIENT_DIST, {"socket.io.min.js", "socket.io.min.js.map"}),
    ("/widget/", HERE / "src", None),
    ("/", HERE / "demo", None),
)
PLACEHOLDER = b'"__RASA_URL__"'


class Handler(SimpleHTTPRequestHandler):
    """Maps URL prefixes to folders; fills the Rasa URL into the demo's HTML."""

    def __init__(self, *args, rasa_url: str, **kwargs) -> None:
        self.rasa_url_js = json.dumps(rasa_url).replace("<", "\\u003c").encode()
        super().__init__(*args, directory=str(HERE / "demo"), **kwargs)

    def translate_path(self, path: str) -> str:
        path = posixpath.normpath(urllib.parse.unquote(path.split("?", 1)[0].split("#", 1)[0]))
        for prefix, folder, allowed in ROUTES:
            if path == prefix.rstrip("/") or path.startswith(prefix):
                rest = path[len(prefix) :] if path.startswith(prefix) else ""
                if allowed is not None and rest not in allowed:
                    return ""
                target = (folder / rest).resolve()
                if target != folder and folder not in target.parents:
                    return ""
                if target.is_dir():
                    target = target / "index.html"
                return str(target)
        return ""

    def send_head(self):
        path = self.translate_path(self.path)
        if not path or not os.path.isfile(path):
            self.send_error(HTTPStatus.NOT_FOUND)
            return None
        if not path.endswith(".html"):
            return super().send_head()
        body = Path(path).read_bytes().replace(PLACEHOLDER, self.rasa_url_js)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return _Body(body)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        sys.stderr.write(f"widget: {format % args}\n")


class _Body:
    """A file-like object over bytes, for SimpleHTTPRequestHandler.copyfile."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, size: int = -1) -> bytes:
        data, self.data = (self.data, b"") if size < 0 else (self.data[:size], self.data[size:])
        return data

    def close(self) -> None:
        self.data = b""


def main(argv: list[str] | None = None) -> None:
    """Parses the arguments and serves until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("WIDGET_PORT", "8080")))
    parser.add_argument("--rasa-url", default=os.environ.get("RASA_URL", "http://127.0.0.1:5005"))
    args = parser.parse_args(argv)
    if urllib.parse.urlsplit(args.rasa_url).scheme not in ("http", "https"):
        parser.error("--rasa-url must be an http(s) URL")
    if not (CLIENT_DIST / "socket.io.min.js").is_file():
        parser.error("socket.io-client is missing: run `npm ci` in widget/ (or `make widget`)")
    handler = partial(Handler, rasa_url=args.rasa_url)
    with ThreadingHTTPServer(("127.0.0.1", args.port), handler) as server:
        print(f"widget demo on http://127.0.0.1:{args.port}/ (Rasa at {args.rasa_url})", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
