"""`make shell DEBUG=1`, the staff's way to try the bot, driven in a real terminal (pty).

The Makefile target runs in a scratch copy of the project (symlinks plus its own
endpoints.yml), so it gets free ports and its own var/ (action server PID file,
SQLite tracker) and never touches a developer's running shell or var/tracker.db.
`STAMP=` and `TRAIN_INPUTS=` stop make from reinstalling or retraining.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import socket
import sqlite3
import tempfile
import time
from pathlib import Path

import pexpect
import pytest
import yaml

from tests.support.ports import free_port, wait_until
from tests.support.servers import MODEL, ROOT

LINKED = [
    "Makefile", ".venv", "actions", "components", "config.yml", "domain.yml",
    "credentials.yml", "clinic.yml", "requirements.txt", "requirements-dev.txt", "scripts",
    "triage", "patches", "channels", "store",
]  # fmt: skip
OPENING = "im 31 weeks pregant and the outside of my right hip burns, worse at night lying on it"
# Free-text answers by a word of the question; anything else gets a button.
TYPED = {"How bad": "about a 6", "How long": "about 3 weeks"}
FREE_TEXT = "Type out your own message..."
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]|\r")
PROMPTS = (FREE_TEXT, "Your input ->")
UP, DOWN, ENTER = "\x1b[A", "\x1b[B", "\r"


class Terminal:
    """What the pty shows, without colours and cursor moves; `mark` starts a turn."""

    def __init__(self, child) -> None:
        self.child = child
        self.raw = ""
        self.mark = 0

    def text(self) -> str:
        return ANSI.sub("", self.raw)

    def since_mark(self) -> str:
        return self.text()[self.mark :]

    def read(self) -> None:
        try:
            self.raw += self.child.read_nonblocking(65536, timeout=0.1)
        except pexpect.TIMEOUT:
            pass
        except pexpect.EOF as error:
            raise AssertionError(f"shell ended; last output:\n{self.tail()}") from error

    def wait(self, condition, seconds: float, what: str):
        """Reads the pty until `condition(screen since the mark)` is truthy; returns it."""
        deadline = time.monotonic() + seconds
        while True:
            found = condition(self.since_mark())
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {seconds}s for {what}; saw:\n{self.tail()}")
            self.read()

    def wait_for(self, pattern: str, seconds: float) -> re.Match:
        return self.wait(lambda screen: re.search(pattern, screen), seconds, repr(pattern))

    def send(self, keys: str) -> None:
        self.mark = len(self.text())
        self.child.send(keys)

    def tail(self, chars: int = 3000) -> str:
        return self.text()[-chars:]


class Store:
    """The scratch project's tracker database: when is a turn of the shell complete?"""

    def __init__(self, path: Path) -> None:
        self.path = path

    def events(self) -> list[tuple[str, str | None, dict]]:
        if not self.path.exists():
            return []
        with sqlite3.connect(self.path) as db:
            rows = db.execute("SELECT type_name, action_name, data FROM events ORDER BY id")
            return [(kind, action, json.loads(data)) for kind, action, data in rows]

    def turn(self, turns: int) -> list[dict] | None:
        """Her `turns`-th message's bot messages, once that turn is saved; else None."""
        events = self.events()
        users = [i for i, (kind, _, _) in enumerate(events) if kind == "user"]
        if len(users) < turns or events[-1][1] != "action_listen" or users[-1] == len(events) - 1:
            return None
        return [data for kind, _, data in events[users[-1] :] if kind == "bot"] or [{}]


def last_line(message: dict) -> str:
    lines = [line for line in (message.get("text") or "").splitlines() if line.strip()]
    return " ".join(lines[-1].split())[:60] if lines else ""


def wait_turn(term: Terminal, store: Store, turns: int) -> tuple[str, str]:
    """Waits until her `turns`-th message is answered and the next prompt is drawn.

    The turn is saved after all its messages were sent; the shell prints them as they
    stream in and then draws a prompt under the last one. Returns (screen, prompt).
    """
    bot = wait_until(lambda: store.turn(turns), 60, f"turn {turns} to be saved")
    last = last_line(bot[-1])

    def drawn(screen: str):
        flat = " ".join(screen.split())
        at = flat.rfind(last) if last else 0
        if at < 0:
            return None
        marks = [(flat.find(m, at), m) for m in PROMPTS if flat.find(m, at) >= 0]
        return min(marks)[1] if marks else None

    prompt = term.wait(drawn, 30, f"the prompt after {last!r}")
    return term.since_mark(), prompt


def pick(term: Terminal, choice: str, keys: str) -> None:
    """Moves a select list's pointer with `keys` until `choice` is highlighted."""
    term.send(keys)
    term.wait(lambda screen: re.search(rf"» {re.escape(choice)}", screen), 20, f"» {choice}")


def project_copy(tmp: Path, actions_port: int) -> Path:
    for name in LINKED:
        (tmp / name).symlink_to(ROOT / name)
    (tmp / "models").mkdir()
    (tmp / "models" / "hip-triage.tar.gz").symlink_to(MODEL)  # the Makefile's MODEL
    shipped = yaml.safe_load((ROOT / "endpoints.yml").read_text())  # the store as shipped
    shipped["action_endpoint"]["url"] = f"http://127.0.0.1:{actions_port}/webhook"
    (tmp / "endpoints.yml").write_text(yaml.safe_dump(shipped))
    return tmp


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def question(screen: str) -> str:
    """The open question: what follows the last select list's "?" mark."""
    return screen.rsplit("\n? ", 1)[-1]


def answer(term: Terminal, screen: str, is_select: bool) -> str:
    """Answers the question on screen; returns what was picked or typed."""
    asked = question(screen) if is_select else screen[-400:]
    typed = next((text for word, text in TYPED.items() if word in asked), None)
    if is_select and typed is None:
        if "2: No (no)" in asked:
            pick(term, "2: No (no)", DOWN)  # a numbered button, picked with the arrows
            term.send(ENTER)
            return "2: No (no)"
        term.send(ENTER)  # the first button
        return re.search(r"1: [^\n]*", asked).group(0).strip()
    if is_select:
        pick(term, FREE_TEXT, UP)  # wraps round to the last choice
        term.send(ENTER)
        term.wait(lambda screen: "Your input ->" in screen, 20, "the free-text prompt")
    text = typed or "not sure"
    term.send(text + ENTER)
    return text


@dataclasses.dataclass
class Session:
    """What one `make shell DEBUG=1` session showed, turn by turn."""

    startup_seconds: float = 0.0
    first: str = ""  # the reply to the opening message
    turns: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # screen, answer
    outcome: str = ""
    exit_status: int | None = None
    actions_pid: int | None = None
    actions_alive_after: bool | None = None
    pid_file_after: bool | None = None
    ports_open_after: bool | None = None
    error: str = ""
    log: str = ""

    def need(self, *fields: str) -> None:
        missing = [name for name in fields if getattr(self, name) in ("", None)]
        if missing:
            pytest.fail(f"the shell session did not get that far ({missing}): {self.error}")


def run_session() -> Session:
    result = Session()
    rasa_port, actions_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        work = project_copy(Path(tmp), actions_port)
        env = {**os.environ, "TERM": "xterm-256color", "PROMPT_TOOLKIT_NO_CPR": "1"}
        env.pop("TRIAGE_DEBUG", None)
        # The action server's port comes from the copy's endpoints.yml alone.
        args = ["-C", str(work), "shell", "STAMP=", "TRAIN_INPUTS=", "DEBUG=1",
                f"RASA_PORT={rasa_port}"]  # fmt: skip
        started = time.monotonic()
        child = pexpect.spawn(
            "make", args, cwd=str(work), env=env, encoding="utf-8", dimensions=(50, 220)
        )
        term = Terminal(child)
        store = Store(work / "var" / "tracker.db")
        pid_file = work / "var" / "actions.pid"
        try:
            term.wait_for("Bot loaded", 240)
            term.wait(lambda screen: "Your input ->" in screen.split("Bot loaded", 1)[-1], 30,
                      "the first prompt")  # fmt: skip
            result.actions_pid = int(pid_file.read_text())
            result.startup_seconds = time.monotonic() - started

            term.send(OPENING + ENTER)
            screen, prompt = wait_turn(term, store, 1)
            result.first = screen
            for turn in range(2, 32):
                if "[debug] outcome:" in screen or "often described as" in screen:
                    result.outcome = screen
                    break
                picked = answer(term, screen, prompt == FREE_TEXT)
                result.turns.append((screen, picked))
                screen, prompt = wait_turn(term, store, turn)
            else:
                raise AssertionError("no outcome after 30 answers")

            if prompt == FREE_TEXT:
                pick(term, FREE_TEXT, UP)
                term.send(ENTER)
                term.wait(lambda screen: "Your input ->" in screen, 20, "the free-text prompt")
            term.send("/stop" + ENTER)
            child.expect(pexpect.EOF, timeout=60)
            child.close()
            result.exit_status = child.exitstatus
            with contextlib.suppress(TimeoutError):
                wait_until(lambda: not alive(result.actions_pid), 10, "the action server to end")
            result.actions_alive_after = alive(result.actions_pid)
            result.pid_file_after = pid_file.exists()
            result.ports_open_after = listening(actions_port) or listening(rasa_port)
        except Exception as error:  # reported by the tests that need the missing part
            result.error = f"{error!r}\n--- terminal\n{term.tail()}"
        finally:
            log = work / "var" / "actions.log"
            result.log = log.read_text()[-4000:] if log.exists() else ""
            if child.isalive():
                child.terminate(force=True)
            if result.actions_pid and alive(result.actions_pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(result.actions_pid, signal.SIGTERM)
    return result


@pytest.fixture(scope="module")
def session() -> Session:
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: run `make train` first")
    result = run_session()
    print(f"\nmake shell: ready after {result.startup_seconds:.0f}s; answers: "
          f"{[picked for _, picked in result.turns]}")  # fmt: skip
    if result.error:
        print(result.error, "\n--- var/actions.log\n", result.log)
    return result


def test_buttons_are_numbered_and_selectable(session: Session) -> None:
    session.need("first")
    first = session.first
    assert "safety check" in first, first
    assert "1: None of these (none of these)" in first, first
    assert "2: Yes, one of these (yes)" in first, first
    assert FREE_TEXT in first  # free text stays possible
    session.need("turns")
    assert session.turns[0][1] == "1: None of these (none of these)"
    # The answer picked from the list is what the bot understood: it moved on.
    assert len(session.turns) < 2 or "safety check" not in question(session.turns[1][0])


def test_a_short_interview_reaches_the_outcome(session: Session) -> None:
    session.need("outcome")
    assert re.search(r"physio|urgent", session.outcome, re.IGNORECASE), session.outcome
    assert any(picked == "2: No (no)" for _, picked in session.turns), session.turns
    assert any(picked in TYPED.values() for _, picked in session.turns), session.turns


def test_debug_shows_the_outcome(session: Session) -> None:
    session.need("outcome")
    assert "[debug] outcome:" in session.outcome, session.outcome


def test_debug_shows_the_case_after_each_turn(session: Session) -> None:
    session.need("first", "turns")
    screens = [session.first] + [screen for screen, _ in session.turns[1:]]
    without = [screen[-300:] for screen in screens if "[debug] case:" not in screen]
    assert not without, f"{len(without)} of {len(screens)} turns show no case: {without[:2]}"


def test_stop_ends_the_shell_and_the_action_server(session: Session) -> None:
    session.need("exit_status", "actions_pid")
    assert session.exit_status == 0, session.error
    assert session.actions_alive_after is False, "the action server outlived `make shell`"
    assert session.pid_file_after is False
    assert session.ports_open_after is False
