"""Privacy: erasure by the patient and by staff, logs without health data, loopback-only
action server, HTTP API only with authentication, telemetry off.

On the shared app (the shipped tracker store on SQLite, the action server started with
scripts/action_server.py, both at Rasa's default log level, INFO). Each test makes its
own conversations and checks only those; staff purge runs on a store of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from store.tracker_store import ClinicTrackerStore
from tests.support.dialogue import run_dialogue
from tests.support.servers import ROOT, shipped_tracker_store, texts

OPENING = "im 29 weeks pregnant and the outside of my left hip burns at night"
ANSWERS = {
    "red_flags": "none of these",
    "down_side_of_leg": "no it stays in the hip",
    "numbness_tingling": "no",
    "below_knee": "no",
    "severity": "about 6",
    "wakes_at_night": "yes it wakes me most nights",
    "weeks_of_pain": "3 weeks",
    "labral_tear": "no",
}


@pytest.fixture
def clinic(servers):
    return servers


def say(servers, sender: str, text: str) -> list[dict]:
    return servers.say(sender, text)


def stored_events(servers, sender: str | None = None) -> int:
    with sqlite3.connect(servers.db) as db:
        if sender is None:
            return db.execute("SELECT count(*) FROM events").fetchone()[0]
        return db.execute("SELECT count(*) FROM events WHERE sender_id = ?", (sender,)).fetchone()[
            0
        ]


def stored_texts(servers, sender: str) -> list[str]:
    with sqlite3.connect(servers.db) as db:
        rows = db.execute(
            "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user' ORDER BY id",
            (sender,),
        ).fetchall()
    return [json.loads(data)["text"] for (data,) in rows]


def ask_to_delete(servers, sender: str) -> list[dict]:
    reply = say(servers, sender, "delete my data")
    question = reply[-1]
    assert "delete this conversation" in question["text"], texts(reply)
    assert [b["title"] for b in question["buttons"]] == ["Yes, delete it", "No, keep it"]
    return reply


def test_patient_erases_her_conversation_after_confirming(clinic):
    bystander = f"bystander-{uuid.uuid4().hex[:8]}"
    say(clinic, bystander, "my butt cheek hurts when i sit, my baby is 4 months old")
    bystander_rows = stored_events(clinic, bystander)
    sender = f"erase-{uuid.uuid4().hex[:8]}"
    say(clinic, sender, "hello")
    say(clinic, sender, "my hip hurts and I have a fever")
    assert stored_events(clinic, sender) > 0
    ask_to_delete(clinic, sender)
    assert stored_events(clinic, sender) > 0, "nothing is deleted before she confirms"
    reply = say(clinic, sender, "yes")
    assert "deleted this conversation" in reply[-1]["text"]
    assert stored_events(clinic, sender) == 0, "every stored event of hers is gone"
    assert stored_events(clinic, bystander) == bystander_rows, "no one else's"
    # Her next message starts afresh, with nothing of before.
    say(clinic, sender, "hi")
    assert stored_texts(clinic, sender) == ["hi"]
    assert clinic.tracker(sender)["slots"]["red_flags"] is None


def test_saying_no_keeps_everything_and_resumes_the_interview(clinic):
    sender = f"keep-{uuid.uuid4().hex[:8]}"
    say(clinic, sender, "my hip hurts on the outside")
    question = say(clinic, sender, "none of these")[-1]["text"]
    before = stored_events(clinic, sender)
    ask_to_delete(clinic, sender)
    reply = say(clinic, sender, "no")
    assert reply[0]["text"] == "OK, I haven't deleted anything."
    assert reply[-1]["text"] == question, "the same question again"
    slots = clinic.tracker(sender)["slots"]
    assert slots["red_flags"] == [] and slots["requested_slot"] == "stage"
    assert stored_events(clinic, sender) > before
    # Her yes/no to the deletion question was not taken as an answer to the interview.
    say(clinic, sender, "I'm pregnant")
    assert clinic.tracker(sender)["slots"]["stage"] == "pregnant"


def test_patient_erases_in_the_middle_of_the_interview_and_after_the_outcome(clinic):
    sender = f"erase-mid-{uuid.uuid4().hex[:8]}"
    say(clinic, sender, OPENING)
    say(clinic, sender, "none of these")
    ask_to_delete(clinic, sender)
    say(clinic, sender, "yes, delete it")
    assert stored_events(clinic, sender) == 0

    sender = f"erase-after-{uuid.uuid4().hex[:8]}"
    slots, _, _ = run_dialogue(clinic, sender, OPENING, ANSWERS)
    assert slots["triage"]
    ask_to_delete(clinic, sender)
    say(clinic, sender, "delete my data")  # asking again also confirms
    assert stored_events(clinic, sender) == 0


def test_yes_without_the_question_erases_nothing(clinic):
    sender = f"no-erase-{uuid.uuid4().hex[:8]}"
    say(clinic, sender, "hello")
    say(clinic, sender, "yes")
    say(clinic, sender, "/affirm")
    assert stored_texts(clinic, sender) == ["hello", "yes", "/affirm"]


def test_action_server_listens_on_loopback_only(clinic):
    port = f"{clinic.actions_port:04X}"
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, local_port = local.split(":")
            if local_port == port and state == "0A":  # LISTEN
                listening.append(address)
    assert listening, "the action server is not listening"
    loopback = {"0100007F", "00000000000000000000000001000000"}
    assert set(listening) <= loopback, f"bound beyond loopback: {listening}"


def make(*args: str, endpoints: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("SENDER", "DAYS")}
    env.update(ENDPOINTS=str(endpoints), MAKEFLAGS="")
    done = subprocess.run(
        ["make", "--no-print-directory", *args, f"ENDPOINTS={endpoints}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_staff_forget_one_conversation_with_make(clinic):
    sender = f"staff-forget-{uuid.uuid4().hex[:8]}"
    other = f"staff-keep-{uuid.uuid4().hex[:8]}"
    say(clinic, sender, "my hip hurts on the outside")
    say(clinic, other, "my hip hurts on the outside")
    out = make("forget", f"SENDER={sender}", endpoints=clinic.endpoints)
    assert "events deleted" in out
    assert stored_events(clinic, sender) == 0
    assert stored_events(clinic, other) > 0
    # The running server carries on: her next message is a fresh conversation.
    say(clinic, sender, "hello")
    assert stored_texts(clinic, sender) == ["hello"]


def test_make_forget_and_purge_refuse_missing_arguments():
    for target in ("forget", "purge"):
        done = subprocess.run(
            ["make", "--no-print-directory", target], cwd=ROOT, capture_output=True, text=True
        )
        assert done.returncode != 0
        assert "usage" in (done.stdout + done.stderr).lower()


def test_logs_at_info_contain_no_message_text_or_slot_values(clinic):
    """Her own words, a whole interview and red flags: none of it reaches a log."""
    said = ["I'm bleeding heavily and my calf is swollen", OPENING, *ANSWERS.values()]
    say(clinic, f"log-flags-{uuid.uuid4().hex[:8]}", said[0])
    run_dialogue(clinic, f"log-dialogue-{uuid.uuid4().hex[:8]}", OPENING, ANSWERS)
    # A barrier: once this turn is answered, every log line of the turns before is out.
    say(clinic, f"log-last-{uuid.uuid4().hex[:8]}", "hello")
    logs = {name: clinic.log(name) for name in ("rasa.log", "actions.log")}
    assert "INFO" in logs["rasa.log"] and "INFO" in logs["actions.log"]
    values = {"heavy_bleeding", "calf_pain_swelling", "fever", "lying_on_side", "burning"}
    for name, log in logs.items():
        for text in (t for t in said if len(t) >= 12):
            assert text not in log, f"{name} contains a message: {text!r}"
        for value in values:
            assert not re.search(rf"\b{value}\b", log), f"{name} contains slot value {value!r}"


def test_staff_purge_with_make(tmp_path):
    """On a store of its own: conversations idle over DAYS days go, the others stay."""
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(shipped_tracker_store(tmp_path))
    store = ClinicTrackerStore(Domain.load(str(ROOT / "domain.yml")), db=str(tmp_path / "t.db"))
    now = time.time()
    for sender, age_days in (("purge-old", 40), ("purge-recent", 2)):
        at = now - age_days * 86400
        events = [UserUttered("hello", timestamp=at), ActionExecuted("action_listen", timestamp=at)]
        asyncio.run(store.save(DialogueStateTracker.from_events(sender, events)))
    out = make("purge", "DAYS=30", endpoints=endpoints)
    assert "whole conversations" in out
    assert store.senders() == ["purge-recent"]
    out = make("purge", "DAYS=0", endpoints=endpoints)
    assert store.senders() == []


# --- configuration we ship -----------------------------------------------------------


def rasa_command_lines() -> list[tuple[str, str]]:
    """Every `rasa run`/`rasa shell` command in the Makefile and deploy/ (file, text)."""
    found = []
    candidates = [ROOT / "Makefile", *sorted((ROOT / "deploy").rglob("*"))]
    for path in candidates:
        if not path.is_file() or path.suffix in {".pyc", ".png"}:
            continue
        text = path.read_text(errors="replace")
        if path.name == "Makefile":
            joined = text.replace("\\\n", " ")
            found += [(path.name, line) for line in joined.splitlines()
                      if re.search(r"\$\(RASA\) (run|shell)\b", line)]  # fmt: skip
        elif "enable-api" in text or "enable_api" in text:
            found.append((str(path.relative_to(ROOT)), text))
    return found


def test_http_api_is_never_on_without_authentication_in_shipped_configs():
    lines = rasa_command_lines()
    assert any(name == "Makefile" for name, _ in lines)
    for name, text in lines:
        enabled = re.search(r"(?<!# No )--enable-api|enable_api:\s*true", text)
        if enabled:
            assert re.search(r"--auth-token|--jwt-secret", text), f"{name}: API without auth"
        if name == "Makefile" and " run " in f" {text} " and "actions" not in text:
            assert "-i 127.0.0.1" in text, f"Makefile: Rasa not bound to loopback: {text}"


def test_telemetry_is_off_everywhere():
    assert re.search(r"^export RASA_TELEMETRY_ENABLED := false", (ROOT / "Makefile").read_text(),
                     re.M)  # fmt: skip
    assert "RASA_TELEMETRY_ENABLED=false" in (ROOT / ".ci" / "run").read_text()
    for path in (ROOT / "deploy").rglob("*"):
        if path.is_file() and path.name in {"Dockerfile", "docker-compose.yml", "settings.env"}:
            text = path.read_text()
            assert re.search(r"RASA_TELEMETRY_ENABLED[=:]\s*\"?false", text), path
