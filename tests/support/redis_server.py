"""A throw-away Redis on 127.0.0.1, from Debian's redis-server package (.ci/run installs
it): a free port, no persistence, its files in a temp dir, stopped afterwards."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from typing import Iterator

import redis

from tests.support.certs import Certs
from tests.support.ports import free_port, wait_until


@contextlib.contextmanager
def redis_server(tls: Certs | None = None) -> Iterator[redis.Redis]:
    """A client of a fresh redis-server; the server is killed on exit.

    With `tls`, the server speaks TLS only (its certificate and key from `tls`).
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is missing: apt-get install redis-server (.ci/run)")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="clinic-redis-") as folder:
        args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                "--appendonly", "no", "--dir", folder]  # fmt: skip
        options: dict = {}
        if tls:
            args[3:5] = ["--port", "0", "--tls-port", str(port), "--tls-cert-file",
                         str(tls.cert), "--tls-key-file", str(tls.key),
                         "--tls-ca-cert-file", str(tls.ca), "--tls-auth-clients", "no"]  # fmt: skip
            options = {"ssl": True, "ssl_ca_certs": str(tls.ca)}
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, **options)

        def answers() -> bool:
            try:
                return bool(client.ping())
            except redis.exceptions.ConnectionError:
                return False

        try:
            wait_until(answers, 15, "redis-server to answer")
            yield client
        finally:
            proc.kill()
            proc.wait(timeout=10)
