import os
import subprocess
import sys
import tempfile

import pytest

from tests.integration.servers import MODEL, ROOT, running_servers, wait_for


@pytest.fixture(scope="session")
def servers():
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: run `make train` first")
    with running_servers() as running:
        yield running


WIDGET = ROOT / "widget"


@pytest.fixture(scope="session")
def widget_url(servers):
    """The demo clinic page with the chat widget, on a free port, talking to `servers`."""
    if not (WIDGET / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js").is_file():
        pytest.fail("widget/node_modules is missing: run `make widget` (npm ci in widget/)")
    port = servers.widget_port  # reserved by Servers, whose Rasa allows this origin (--cors)
    url = servers.widget_origin
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, str(WIDGET / "serve.py"), "--port", str(port)]
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
