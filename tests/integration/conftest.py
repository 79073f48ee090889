"""The shared app: one Rasa server and action server, as `make run` ships them with
Telegram (credentials.telegram.yml: REST, socket.io, Telegram against a fake Bot API
server, health), used by every integration test that does not break or restart it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

from tests.support.fake_telegram import BOT_USERNAME, TOKEN, FakeTelegram
from tests.support.ports import wait_for
from tests.support.servers import ROOT, running_servers

TELEGRAM_SECRET = "test_Secret-token_0123456789"
WIDGET = ROOT / "widget"


@pytest.fixture(scope="session")
def fake_telegram():
    server = FakeTelegram().start()
    # Telegram unreachable at start-up: the connector retries, the server never crashes.
    server.fail("setWebhook", times=1)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def servers(model, fake_telegram):
    env = {
        "TELEGRAM_TOKEN": TOKEN,
        "TELEGRAM_BOT_NAME": BOT_USERNAME,
        "TELEGRAM_SECRET_TOKEN": TELEGRAM_SECRET,
        "TELEGRAM_API_SERVER": fake_telegram.url,
    }

    def webhook(servers) -> None:  # names the server's own port, once it is chosen
        servers.webhook = f"{servers.url}/webhooks/telegram/webhook"
        servers.env["TELEGRAM_WEBHOOK_URL"] = servers.webhook

    credentials = ROOT / "credentials.telegram.yml"
    with running_servers(before_start=webhook, credentials=credentials, env=env) as running:
        yield running


@pytest.fixture(scope="session")
def widget_url(servers):
    """The demo clinic page with the chat widget, on the port `servers` allows (--cors)."""
    if not (WIDGET / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js").is_file():
        pytest.fail("widget/node_modules is missing: run `make widget` (npm ci in widget/)")
    url = servers.widget_origin
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, str(WIDGET / "serve.py"), "--port", str(servers.widget_port)]
            + ["--rasa-url", servers.url],
            cwd=ROOT,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(f"{url}/", 15, proc)
            yield url
        except Exception:
            log.seek(0)
            print(f"--- widget/serve.py\n{log.read().decode(errors='replace')[-4000:]}")
            raise
        finally:
            proc.terminate()
            proc.wait(timeout=10)


# Two groups, one per xdist worker (make test-dialogues: -n 2 --dist loadgroup): the
# tests of the shared app, and those that start, break or kill servers of their own
# (and the plain verbs, which need Rasa's default ports to themselves).
OWN_SERVERS = {"test_faults.py", "test_shell.py", "test_plain_verbs.py"}


def pytest_collection_modifyitems(items):
    for item in items:
        group = "own-servers" if item.path.name in OWN_SERVERS else "shared-app"
        item.add_marker(pytest.mark.xdist_group(group))
