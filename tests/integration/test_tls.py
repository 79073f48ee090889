"""TLS to PostgreSQL and Redis with the shipped deploy/endpoints.prod.yml, as Rasa reads
it: a local PostgreSQL and Redis that speak TLS only, with a certificate from a
throw-away CA. The stores connect when they are given that CA (verify-full: the
certificate and the host name are checked), and refuse a server whose certificate
another CA signed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.certs import make_certs
from tests.support.postgres import Postgres, postgres_missing
from tests.support.redis_server import redis_server

ROOT = Path(__file__).resolve().parents[2]
ENDPOINTS = ROOT / "deploy" / "endpoints.prod.yml"
pytestmark = pytest.mark.xdist_group("tls")

# Builds the stores from the shipped file as `rasa run` does, in a fresh process with
# only the deployment's environment; prints what the connections say about TLS.
PROBE = """
import sys
from rasa.core.lock_store import LockStore
from rasa.core.tracker_store import TrackerStore
from rasa.core.utils import read_endpoints_from_path
import sqlalchemy as sa

endpoints = read_endpoints_from_path(sys.argv[1])
which = sys.argv[2]
if which == "postgres":
    endpoints.tracker_store.kwargs.update(exit_on_error=False, startup_wait=2)
    store = TrackerStore.create(endpoints.tracker_store)
    store = getattr(store, "_tracker_store", store)
    with store.engine.connect() as connection:
        ssl = connection.execute(
            sa.text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        ).scalar()
    print("postgres tls:", ssl)
else:
    locks = LockStore.create(endpoints.lock_store)
    locks.red.ping()
    print("redis tls:", locks.red.connection_pool.connection_class.__name__)
"""


def probe(which: str, env: dict) -> subprocess.CompletedProcess:
    base = {"PATH": os.environ.get("PATH", ""), "RASA_TELEMETRY_ENABLED": "false"}
    return subprocess.run(
        [sys.executable, "-c", PROBE, str(ENDPOINTS), which],
        capture_output=True, text=True, env={**base, **env}, timeout=120, cwd=ROOT,
    )  # fmt: skip


def settings(pg_port: int = 1, redis_port: int = 1, ca: Path | str = "") -> dict:
    return {
        "ACTION_SERVER_URL": "http://127.0.0.1:9/webhook",
        "DB_HOST": "localhost", "DB_PORT": str(pg_port), "DB_NAME": "rasa",
        "DB_USER": "postgres", "DB_PASSWORD": "",
        "DB_SSLMODE": "verify-full", "DB_SSLROOTCERT": str(ca),
        "REDIS_HOST": "localhost", "REDIS_PORT": str(redis_port), "REDIS_PASSWORD": "",
        "REDIS_DB": "1", "REDIS_TLS": "true", "REDIS_CA_CERTS": str(ca),
    }  # fmt: skip


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    return make_certs(folder / "clinic"), make_certs(folder / "other")


@pytest.fixture(scope="module")
def postgres(certs):
    reason = postgres_missing()
    if reason:
        pytest.skip(reason)
    server = Postgres(tls=(certs[0].cert, certs[0].key)).start()
    yield server
    server.remove()


def test_postgresql_over_verified_tls_with_the_shipped_settings(postgres, certs):
    done = probe("postgres", settings(pg_port=postgres.port, ca=certs[0].ca))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "postgres tls: True" in done.stdout


def test_a_postgresql_certificate_from_another_ca_is_refused(postgres, certs):
    done = probe("postgres", settings(pg_port=postgres.port, ca=certs[1].ca))
    assert done.returncode != 0
    assert "SSL error" in done.stderr and "sslrootcert" in done.stderr


def test_redis_over_verified_tls_with_the_shipped_settings(certs):
    with redis_server(tls=certs[0]) as client:
        port = client.connection_pool.connection_kwargs["port"]
        done = probe("redis", settings(redis_port=port, ca=certs[0].ca))
        assert done.returncode == 0, done.stderr[-2000:]
        assert "redis tls: SSLConnection" in done.stdout
        refused = probe("redis", settings(redis_port=port, ca=certs[1].ca))
        assert refused.returncode != 0
        assert "certificate verify failed" in refused.stderr
