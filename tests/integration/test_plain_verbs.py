"""The plain Rasa verbs in a fresh clone, without make, as clinic staff type them.

A copy of the files git tracks (a fresh clone: no var/, no models/) plus the trained
model, run with the shipped endpoints.yml and credentials.yml on their default ports
(Rasa 5005, actions 5055): `rasa run actions` and `rasa run` answer over REST, `rasa
shell` through a pty, `rasa test` passes every conversation test, `rasa data validate`
passes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pexpect
import pytest
import yaml

from tests.needs import missing
from tests.support.ports import wait_for, wait_until
from tests.support.servers import MODEL, ROOT

BIN = Path(sys.executable).parent
RASA_PORT, ACTIONS_PORT = 5005, 5055  # what endpoints.yml and `rasa run` use


def in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def holder(port: int) -> str:
    """Who listens on `port` (from /proc), to name it when the port is not free."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in wanted:
                        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
                        return f"pid {proc.name}: {cmdline.decode().strip()[:200]}"
    return "a process this user cannot see"


def wait_free(port: int, seconds: float = 60) -> None:
    """Waits until nothing listens on `port` (a server of this module may be closing)."""
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: not in_use(port), seconds, f"port {port} to be free")


@pytest.fixture(scope="module")
def clone(model):
    if shutil.which("git") is None:
        missing("git is missing")
    for port in (RASA_PORT, ACTIONS_PORT):
        wait_free(port)
        if in_use(port):
            missing(f"port {port} is in use ({holder(port)}): the plain verbs need it")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "clone"
        files = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout.split(b"\0")
        for name in filter(None, files):
            source = ROOT / name.decode()
            if source.is_file():
                target = work / name.decode()
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        assert not (work / "var").exists() and not (work / "models").exists()
        (work / "models").mkdir()
        shutil.copy2(MODEL, work / "models" / MODEL.name)
        yield work


def env() -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith(("CLINIC_", "TRIAGE_"))}
    # What `source .venv/bin/activate` gives: the venv's rasa first on the PATH.
    values.update(PATH=f"{BIN}:{values.get('PATH', '')}", RASA_TELEMETRY_ENABLED="false")
    values["SANIC_HOST"] = "127.0.0.1"  # `rasa run actions` on loopback in tests
    return values


def rasa(*args: str) -> list[str]:
    return [str(BIN / "rasa"), *args]


@pytest.fixture(scope="module")
def actions(clone):
    log = open(clone / "actions.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(rasa("run", "actions"), cwd=clone, env=env(), stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{ACTIONS_PORT}/health", 90, proc)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        wait_free(ACTIONS_PORT)


def post(text: str, sender: str) -> list[dict]:
    import json
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{RASA_PORT}/webhooks/rest/webhook",
        data=json.dumps({"sender": sender, "message": text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_rasa_run_answers_over_rest_and_makes_its_own_private_store(clone, actions, settings):
    log = open(clone / "rasa.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(rasa("run"), cwd=clone, env=env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{RASA_PORT}/webhooks/rest/", 180, proc)
        greeting = post("hi", "plain-run")
        assert "hip pain helper" in greeting[0]["text"], greeting
        assert settings["emergency_number"] in greeting[0]["text"]
        screen = post("my hip hurts on the outside", "plain-run")
        assert "safety check" in screen[-1]["text"], screen
        var, db = clone / "var", clone / "var" / "tracker.db"
        assert stat.S_IMODE(var.stat().st_mode) == 0o700
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    assert "Traceback" not in (clone / "rasa.log").read_text(errors="replace")


def test_rasa_shell_in_a_terminal(clone, actions):
    child = pexpect.spawn(rasa("shell")[0], ["shell"], cwd=str(clone), env=env(),
                          encoding="utf-8", dimensions=(50, 200), timeout=180)  # fmt: skip
    try:
        child.expect("Bot loaded")
        child.expect("Your input ->")
        child.sendline("hi")
        child.expect("hip pain helper")
        child.expect("Your input ->")
        child.sendline("/stop")
        child.expect(pexpect.EOF, timeout=60)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before


def test_rasa_test_passes_every_conversation_test(clone, tmp_path):
    out = tmp_path / "results"
    done = subprocess.run(rasa("test", "--out", str(out)), cwd=clone, env=env(),
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    failed = yaml.safe_load((out / "failed_test_stories.yml").read_text()) or {}
    assert not failed.get("stories"), failed
    report = yaml.safe_load((out / "story_report.json").read_text())
    stories = yaml.safe_load((ROOT / "tests" / "test_stories.yml").read_text())["stories"]
    assert report["conversation_accuracy"]["total"] == len(stories), report


def test_rasa_data_validate(clone):
    done = subprocess.run(rasa("data", "validate", "--fail-on-warnings"), cwd=clone, env=env(),
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
