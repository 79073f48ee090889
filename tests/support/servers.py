"""A Rasa server and the action server on free loopback ports, as shipped, for tests.

The tracker store is the one `endpoints.yml` ships (ClinicTrackerStore on SQLite), with
its database in the test's own folder; the action server is the project's loopback one
(`scripts/action_server.py`); the channels are those of `credentials.yml`, or of
`credentials.telegram.yml` with `telegram=` a fake Bot API server.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from tests.support.ports import free_port, wait_for, wait_until

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "hip-triage.tar.gz"


def shipped_selective_domain() -> bool:
    """Whether the shipped endpoints.yml leaves the domain out of action server calls."""
    shipped = yaml.safe_load((ROOT / "endpoints.yml").read_text())["action_endpoint"]
    return bool(shipped.get("enable_selective_domain", False))


RASA = str(Path(sys.executable).parent / "rasa")
PYTHON = sys.executable
ACTION_SERVER = [PYTHON, "scripts/action_server.py", "--port", "{port}"]


def shipped_tracker_store(workdir: Path, **overrides: Any) -> str:
    """endpoints.yml's `tracker_store:` section, with its SQLite file in `workdir`."""
    shipped = yaml.safe_load((ROOT / "endpoints.yml").read_text(encoding="utf-8"))
    section = {**shipped["tracker_store"], "db": str(workdir / "t.db"), "startup_wait": 5}
    section.update(overrides)
    return yaml.safe_dump({"tracker_store": section}, sort_keys=False)


def texts(reply: list[dict]) -> list[str]:
    """The texts of a list of bot messages."""
    return [message.get("text", "") for message in reply]


class Servers:
    """A running Rasa server (token-protected HTTP API) and action server."""

    def __init__(
        self,
        workdir: Path,
        tracker_store: str | None = None,
        env: dict[str, str] | None = None,
        actions_cmd: list[str] | None = None,
        model: Path | None = None,
        credentials: Path | None = None,
    ) -> None:
        """Optional (the defaults are what ships):

        tracker_store: the `tracker_store:` section of endpoints.yml, as YAML text
            (`{workdir}` is replaced); default: the shipped one, in `workdir`.
        env: extra environment for both servers.
        actions_cmd: how to start the action server (`{port}` is replaced).
        model: another model file (default: models/hip-triage.tar.gz).
        credentials: another credentials file (default: credentials.yml).
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
        self.tracker_store = tracker_store or shipped_tracker_store(workdir)
        self.env = dict(env or {})
        # The widget's page is the only origin allowed to open a socket.
        self.env.setdefault("WEB_ORIGINS", self.widget_origin)
        # Scripted patients answer the moment a reply arrives, faster than the shipped
        # limit of 1 message a second per socket (tests/test_socketio_channel.py tests
        # that limit on the channel itself).
        self.env.setdefault("WEB_MESSAGE_RATE", "50")
        self.env.setdefault("WEB_MESSAGE_BURST", "50")
        self.actions_cmd = actions_cmd or ACTION_SERVER
        self.model = model or MODEL
        self.credentials = credentials or ROOT / "credentials.yml"
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

    @property
    def db(self) -> Path:
        """The SQLite tracker database (with the shipped store)."""
        return self.workdir / "t.db"

    def log(self, name: str = "rasa.log") -> str:
        path = self.workdir / name
        return path.read_text(errors="replace") if path.exists() else ""

    def write_endpoints(self) -> Path:
        self.endpoints.write_text(
            f'action_endpoint:\n  url: "http://127.0.0.1:{self.actions_port}/webhook"\n'
            f"  enable_selective_domain: {str(shipped_selective_domain()).lower()}\n"
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
             "--credentials", str(self.credentials), "-i", "127.0.0.1",
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
        """One turn through the REST channel; the bot's messages."""
        body = json.dumps({"sender": sender, "message": text}).encode()
        request = urllib.request.Request(
            f"{self.url}/webhooks/rest/webhook",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def tracker(self, sender: str, events: str = "AFTER_RESTART") -> dict:
        """Her tracker from the HTTP API (`events`: Rasa's include_events, e.g. ALL)."""
        url = (
            f"{self.url}/conversations/{sender}/tracker?token={self.token}&include_events={events}"
        )
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.loads(response.read())

    def slots(self, sender: str) -> dict:
        return self.tracker(sender)["slots"]

    def turn_messages(self, sender: str, text: str, seconds: float = 60) -> list[dict]:
        """The bot's messages of her latest message `text`, once that turn is complete.

        Complete: the tracker's last user message is `text` (as stored: after the
        message guard's clean-up) and its last event is `action_listen`. Rasa saves a
        turn after sending every message of it, so a client of a pushing channel
        (socket.io, Telegram) then waits for exactly that many messages.
        """

        def done() -> list[dict] | None:
            events = self.tracker(sender, "ALL")["events"] or []
            users = [i for i, e in enumerate(events) if e["event"] == "user"]
            if not users or events[users[-1]].get("text") != text:
                return None
            if events[-1].get("name") != "action_listen" or users[-1] == len(events) - 1:
                return None
            bot = [e for e in events[users[-1] :] if e["event"] == "bot"]
            return [{"text": e.get("text"), **(e.get("data") or {})} for e in bot] or [{}]

        found = wait_until(done, seconds, f"the turn of {sender} to complete")
        return [m for m in found if m]

    def bot_messages(self, sender: str) -> int:
        """How many bot messages the tracker holds for `sender`."""
        return sum(1 for e in self.tracker(sender)["events"] or [] if e["event"] == "bot")


@contextlib.contextmanager
def running_servers(
    before_start: Callable[[Servers], None] | None = None, **options: Any
) -> Iterator[Servers]:
    """Servers in a temporary directory; `options` go to `Servers` (all optional).

    `before_start(servers)` can set what depends on the ports chosen (e.g. a webhook URL).
    """
    with tempfile.TemporaryDirectory() as tmp:
        servers = Servers(Path(tmp), **options)
        if before_start is not None:
            before_start(servers)
        try:
            yield servers.start()
        except Exception:
            for log in ("actions.log", "rasa.log"):
                text = servers.log(log)
                if text:
                    print(f"--- {log}\n{text[-4000:]}")
            raise
        finally:
            servers.stop()
