"""Starts the action server and a Rasa server on free loopback ports, for tests."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "hip-triage.tar.gz"
RASA = str(Path(sys.executable).parent / "rasa")
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, seconds: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early ({proc.returncode}) for {url}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        time.sleep(0.3)
    raise TimeoutError(f"{url} not up after {seconds}s")


class Servers:
    """A running Rasa server (REST channel + token-protected API) and action server."""

    def __init__(
        self,
        workdir: Path,
        tracker_store: str | None = None,
        env: dict[str, str] | None = None,
        actions_cmd: list[str] | None = None,
        model: Path | None = None,
    ) -> None:
        """Optional (for the reliability tests; the defaults are what the others use):

        tracker_store: the `tracker_store:` section of endpoints.yml, as YAML text
            (`{workdir}` is replaced), instead of Rasa's SQL store on `{workdir}/t.db`.
        env: extra environment for both servers.
        actions_cmd: how to start the action server (`{port}` is replaced).
        model: another model file (default: models/hip-triage.tar.gz).
        """
        self.workdir = workdir
        self.token = secrets.token_hex(16)
        self.rasa_port, self.actions_port = free_port(), free_port()
        # A port reserved for a static server of the website widget (tests that
        # need it start it there); Rasa allows that origin and no other.
        self.widget_port = free_port()
        self.widget_origin = f"http://127.0.0.1:{self.widget_port}"
        self.url = f"http://127.0.0.1:{self.rasa_port}"
        self.procs: list[subprocess.Popen] = []
        self.tracker_store = tracker_store or (
            'tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: "{workdir}/t.db"\n'
        )
        self.env = dict(env or {})
        self.actions_cmd = actions_cmd or [PYTHON, "scripts/action_server.py", "--port", "{port}"]
        self.model = model or MODEL
        self.actions_proc: subprocess.Popen | None = None
        self.rasa_proc: subprocess.Popen | None = None

    def _spawn(self, args: list[str], log: str) -> subprocess.Popen:
        env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
        env.update(self.env)
        out = open(self.workdir / log, "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        out.close()  # the child keeps its own copy
        self.procs.append(proc)
        return proc

    @property
    def endpoints(self) -> Path:
        return self.workdir / "endpoints.yml"

    def write_endpoints(self) -> Path:
        self.endpoints.write_text(
            f'action_endpoint:\n  url: "http://127.0.0.1:{self.actions_port}/webhook"\n'
            + self.tracker_store.replace("{workdir}", str(self.workdir))
        )
        return self.endpoints

    def start(self) -> Servers:
        self.write_endpoints()
        self.start_actions(wait=False)
        self.start_rasa(wait=False)
        wait_for(f"http://127.0.0.1:{self.actions_port}/health", 60, self.actions_proc)
        wait_for(f"{self.url}/", 120, self.rasa_proc)
        return self

    def start_actions(self, wait: bool = True) -> subprocess.Popen:
        """Starts the action server (again) on the same port."""
        args = [a.replace("{port}", str(self.actions_port)) for a in self.actions_cmd]
        self.actions_proc = self._spawn(args, "actions.log")
        if wait:
            wait_for(f"http://127.0.0.1:{self.actions_port}/health", 60, self.actions_proc)
        return self.actions_proc

    def start_rasa(self, wait: bool = True) -> subprocess.Popen:
        """Starts the Rasa server (again) on the same port, store and token."""
        self.rasa_proc = self._spawn(
            [RASA, "run", "--model", str(self.model), "--endpoints", str(self.endpoints),
             "--credentials", str(ROOT / "credentials.yml"), "-i", "127.0.0.1",
             "--port", str(self.rasa_port), "--enable-api", "--auth-token", self.token,
             "--cors", self.widget_origin],
            "rasa.log",
        )  # fmt: skip
        if wait:
            wait_for(f"{self.url}/", 120, self.rasa_proc)
        return self.rasa_proc

    @staticmethod
    def _end(proc: subprocess.Popen | None, kill: bool) -> None:
        if proc is None or proc.poll() is not None:
            return
        proc.kill() if kill else proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)

    def stop_actions(self, kill: bool = True) -> None:
        """Stops the action server (SIGKILL by default: a crash)."""
        self._end(self.actions_proc, kill)

    def stop_rasa(self, kill: bool = True) -> None:
        """Stops the Rasa server (SIGKILL by default: a crash)."""
        self._end(self.rasa_proc, kill)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()

    def say(self, sender: str, text: str) -> list[dict]:
        body = json.dumps({"sender": sender, "message": text}).encode()
        request = urllib.request.Request(
            f"{self.url}/webhooks/rest/webhook",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def tracker(self, sender: str) -> dict:
        url = f"{self.url}/conversations/{sender}/tracker?token={self.token}"
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.loads(response.read())


@contextlib.contextmanager
def running_servers(**options):
    """Servers in a temporary directory; `options` go to `Servers` (all optional)."""
    with tempfile.TemporaryDirectory() as tmp:
        servers = Servers(Path(tmp), **options)
        try:
            yield servers.start()
        except Exception:
            for log in ("actions.log", "rasa.log"):
                path = Path(tmp) / log
                if path.exists():
                    print(f"--- {log}\n{path.read_text()[-4000:]}")
            raise
        finally:
            servers.stop()
