"""Faults: action server down or hung, Rasa killed mid-interview, tracker database
unreachable at start or during a conversation, a custom store that fails to import.

Red flags still get the urgent advice first, other turns get a short apology with the
clinic's phone number, nothing acknowledged is lost, and a broken database is loud
(health check 503, ERROR in the log), never a silent switch to memory.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.needs import missing
from tests.support.dialogue import run_dialogue
from tests.support.ports import free_port, wait_until
from tests.support.postgres import Postgres, postgres_missing
from tests.support.servers import Servers, running_servers, shipped_tracker_store, texts
from triage import clinic as clinic_settings

ACTION_TIMEOUT = 3  # seconds (ACTION_SERVER_TIMEOUT), so the hung-server test is quick
OPENING = "my hip hurts on the outside"
ANSWERS = {
    "red_flags": "none of these",
    "stage": "I'm pregnant",
    "weeks": "24 weeks",
    "down_side_of_leg": "no",
    "numbness_tingling": "no",
    "below_knee": "no",
    "severity": "about 5",
    "wakes_at_night": "no",
    "weeks_of_pain": "2 weeks",
    "labral_tear": "no",
    "continue_after_urgent": "carry on",
}
INJECTED: dict[str, int] = {}
# After "I'm pregnant", with the outer hip opening: the next question the rules ask.
NEXT_AFTER_STAGE = "down_side_of_leg"


def injected(kind: str) -> None:
    INJECTED[kind] = INJECTED.get(kind, 0) + 1


@pytest.fixture(scope="module")
def fleet(model):
    """A server pair of its own, as shipped: these tests kill and break it."""
    env = {"ACTION_SERVER_TIMEOUT": str(ACTION_TIMEOUT)}
    with running_servers(env=env) as running:
        yield running
    print(f"\nfaults injected: {INJECTED}")


def say(servers, sender: str, text: str) -> list[dict]:
    return servers.say(sender, text)


def health(servers) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{servers.url}/webhooks/health/", timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def is_apology(text: str) -> bool:
    phone = clinic_settings.settings()["phone"]
    return text.startswith("Sorry, something went wrong on my side") and phone in text


def slots(servers, sender: str) -> dict:
    return servers.tracker(sender)["slots"]


def user_texts(servers, sender: str) -> list[str]:
    return [e["text"] for e in servers.tracker(sender)["events"] if e["event"] == "user"]


def at_stage_question(servers, sender: str) -> None:
    say(servers, sender, OPENING)
    say(servers, sender, "none of these")
    assert slots(servers, sender)["requested_slot"] == "stage"


def finish(servers, sender: str) -> dict:
    """Answers whatever is asked until the outcome; returns the final slots."""
    for _ in range(30):
        current = slots(servers, sender)
        if current.get("triage"):
            return current
        requested = current["requested_slot"]
        assert requested, f"no question and no outcome: {current}"
        say(servers, sender, ANSWERS.get(requested, "not sure"))
    raise AssertionError("no outcome after 30 turns")


def test_health_check_is_ok(fleet):
    assert health(fleet) == (200, {"status": "ok", "tracker_store": "ok", "lock_store": "ok"})
    with urllib.request.urlopen(f"{fleet.url}/webhooks/health", timeout=15) as response:
        assert response.status == 200


def test_action_server_down_apologises_keeps_red_flags_and_resumes(fleet):
    sender = f"down-{uuid.uuid4().hex[:8]}"
    at_stage_question(fleet, sender)
    fleet.stop_actions(kill=True)
    injected("action server killed")
    try:
        reply = say(fleet, sender, "I'm pregnant")
        assert len(reply) == 1 and is_apology(reply[0]["text"]), texts(reply)
        assert slots(fleet, sender)["stage"] is None, "nothing half-done"
        assert slots(fleet, sender)["requested_slot"] == "stage"

        reply = say(fleet, sender, "why does this happen")
        assert is_apology(reply[-1]["text"]), texts(reply)

        reply = say(fleet, sender, "I have a fever")
        assert reply[0]["text"].startswith("⚠️"), "urgent advice first, from the domain"
        assert is_apology(reply[-1]["text"]), texts(reply)
        assert sum(is_apology(t) for t in texts(reply)) == 1, "one apology per turn"
        assert "fever" in slots(fleet, sender)["red_flags"], "the red flag is kept"

        other = f"down-new-{uuid.uuid4().hex[:8]}"
        reply = say(fleet, other, "hello")
        assert reply and reply[0]["text"].startswith("Hi,"), "a new conversation still starts"
    finally:
        fleet.start_actions()
    # Back: she repeats her answer and the interview carries on where it was.
    say(fleet, sender, "I'm pregnant")
    current = slots(fleet, sender)
    # After the urgent sign's advice she chooses to carry on about her hip, or stop.
    assert current["stage"] == "pregnant", current
    assert current["requested_slot"] == "continue_after_urgent", current
    final = finish(fleet, sender)
    assert final["triage"]["urgency"] == "urgent", "the fever reported while down counts"
    assert "fever" in final["triage"]["red_flags"]
    said = user_texts(fleet, sender)
    assert said[:2] == [OPENING, "none of these"] and "I have a fever" in said


def test_action_server_down_emergency_still_gets_the_urgent_advice(fleet):
    sender = f"down-emergency-{uuid.uuid4().hex[:8]}"
    at_stage_question(fleet, sender)
    fleet.stop_actions(kill=True)
    injected("action server killed")
    try:
        reply = say(fleet, sender, "I'm bleeding heavily")
        assert reply[0]["text"].startswith("⚠️ This needs urgent medical help now"), texts(reply)
        assert clinic_settings.settings()["emergency_number"] in reply[0]["text"]
        assert is_apology(reply[-1]["text"])
        assert "heavy_bleeding" in slots(fleet, sender)["red_flags"]
        # Before the interview too.
        other = f"down-emergency-first-{uuid.uuid4().hex[:8]}"
        reply = say(fleet, other, "I fell down the stairs and I'm bleeding")
        assert reply[0]["text"].startswith("⚠️ This needs urgent medical help now"), texts(reply)
    finally:
        fleet.start_actions()


def test_hung_action_server_times_out_with_the_apology(fleet):
    sender = f"hung-{uuid.uuid4().hex[:8]}"
    at_stage_question(fleet, sender)
    os.kill(fleet.actions_proc.pid, signal.SIGSTOP)
    injected("action server hung (SIGSTOP)")
    try:
        # Without the timeout the turn would hang past the client's own timeout.
        reply = say(fleet, sender, "I'm pregnant")
        assert is_apology(reply[-1]["text"]), texts(reply)
        reply = say(fleet, sender, "I have chest pain and can't breathe")
        assert reply[0]["text"].startswith("⚠️"), texts(reply)
    finally:
        os.kill(fleet.actions_proc.pid, signal.SIGCONT)
    say(fleet, sender, "I'm pregnant")
    assert slots(fleet, sender)["stage"] == "pregnant"


def test_rasa_killed_between_turns_loses_nothing(fleet):
    sender = f"kill-{uuid.uuid4().hex[:8]}"
    at_stage_question(fleet, sender)
    say(fleet, sender, "I'm pregnant")
    say(fleet, sender, ANSWERS.get(slots(fleet, sender)["requested_slot"], "not sure"))
    before = fleet.tracker(sender)
    fleet.stop_rasa(kill=True)
    injected("Rasa server killed (SIGKILL) between turns")
    fleet.start_rasa()
    after = fleet.tracker(sender)
    assert after["slots"] == before["slots"]
    assert after["events"] == before["events"]
    final = finish(fleet, sender)
    assert final["stage"] == "pregnant" and final["triage"]


def waiting_requests(port: int) -> int:
    """Connections to `port` whose request is received but not yet read (/proc/net/tcp)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, queues = fields[1], fields[3], fields[4]
            rx_queue = int(queues.split(":")[1], 16)
            if int(local.split(":")[1], 16) == port and state == "01" and rx_queue > 0:
                count += 1
    return count


def test_rasa_killed_during_a_turn_leaves_a_consistent_conversation(fleet):
    sender = f"kill-mid-{uuid.uuid4().hex[:8]}"
    at_stage_question(fleet, sender)
    before = fleet.tracker(sender)
    errors: list[Exception] = []

    def send() -> None:
        try:
            fleet.say(sender, "I'm pregnant")
        except Exception as error:  # the connection dies with the server
            errors.append(error)

    # The action server is paused, so the turn stops inside its first custom action:
    # the kill lands mid-turn, every time.
    os.kill(fleet.actions_proc.pid, signal.SIGSTOP)
    thread = threading.Thread(target=send)
    try:
        thread.start()
        wait_until(lambda: waiting_requests(fleet.actions_port), 30, "Rasa to call the actions")
        fleet.stop_rasa(kill=True)
        injected("Rasa server killed (SIGKILL) during a turn")
        thread.join(timeout=60)
    finally:
        os.kill(fleet.actions_proc.pid, signal.SIGCONT)
    assert errors, "the turn was cut off"
    fleet.start_rasa()
    after = fleet.tracker(sender)
    assert after["events"] == before["events"], "a cut-off turn is not kept half-done"
    say(fleet, sender, "I'm pregnant")  # she sends it again
    after = fleet.tracker(sender)
    assert after["events"][: len(before["events"])] == before["events"], "history intact"
    assert after["slots"]["stage"] == "pregnant"
    assert after["slots"]["requested_slot"] == NEXT_AFTER_STAGE
    assert finish(fleet, sender)["triage"]


def break_sqlite(path: Path) -> Path:
    moved = path.with_name(path.name + ".moved")
    path.rename(moved)
    path.mkdir()
    return moved


def test_database_unreachable_during_a_conversation_is_loud_and_never_memory(fleet):
    sender = f"db-down-{uuid.uuid4().hex[:8]}"
    at_stage_question(fleet, sender)
    before = fleet.tracker(sender)
    db = fleet.db
    moved = break_sqlite(db)
    injected("tracker database unreachable (SQLite file replaced)")
    try:
        status, body = health(fleet)
        assert status == 503 and body["status"] == "error" and body["error"], body
        reply = say(fleet, sender, "I'm pregnant")
        assert len(reply) == 1 and is_apology(reply[0]["text"]), texts(reply)
        reply = say(fleet, f"db-down-new-{uuid.uuid4().hex[:8]}", "hello")
        assert len(reply) == 1 and is_apology(reply[0]["text"]), "no conversation in memory"
    finally:
        db.rmdir()
        moved.rename(db)
    assert health(fleet)[0] == 200
    log = fleet.log()
    assert "ERROR" in log and "Tracker database error" in log
    assert "Falling back to use the 'InMemoryTrackerStore'" not in log
    after = fleet.tracker(sender)
    assert after["events"] == before["events"], "the outage turn was kept nowhere"
    say(fleet, sender, "I'm pregnant")
    assert slots(fleet, sender)["requested_slot"] == NEXT_AFTER_STAGE


def start_rasa_only(workdir: Path, tracker_store: str) -> Servers:
    servers = Servers(workdir, tracker_store=tracker_store)
    servers.write_endpoints()
    servers.start_rasa(wait=False)
    return servers


def wait_exit(proc, seconds: float) -> int | None:
    try:
        return proc.wait(timeout=seconds)
    except Exception:
        return None


@pytest.mark.parametrize("where", ["sqlite_cannot_be_created", "postgresql_closed_port"])
def test_database_unreachable_at_start_stops_the_server_with_one_line(model, where, tmp_path):
    (tmp_path / "a-file").write_text("")
    section = {
        "sqlite_cannot_be_created": shipped_tracker_store(tmp_path, db=f"{tmp_path}/a-file/t.db"),
        "postgresql_closed_port": (
            "tracker_store:\n  type: store.tracker_store.ClinicTrackerStore\n"
            f"  dialect: postgresql\n  url: 127.0.0.1\n  port: {free_port()}\n"
            "  db: rasa\n  username: postgres\n  startup_wait: 2\n"
        ),
    }[where]
    injected(f"tracker database unreachable at start ({where})")
    servers = start_rasa_only(tmp_path, section)
    try:
        code = wait_exit(servers.rasa_proc, 120)
        log = servers.log()
        assert code == 1, f"the server kept running without its database: {log[-3000:]}"
        lines = [line for line in log.splitlines() if line.startswith("tracker_store")]
        assert len(lines) == 1 and "check" in lines[0], log[-3000:]
        assert "Traceback" not in log, log[-3000:]
        with pytest.raises(OSError):
            urllib.request.urlopen(f"{servers.url}/webhooks/health/", timeout=5)
    finally:
        servers.stop()


def test_a_store_that_fails_to_import_fails_the_health_check(model, tmp_path):
    section = "tracker_store:\n  type: store.tracker_stor.ClinicTrackerStore\n  db: x.db\n"
    injected("tracker store module path misspelt (Rasa falls back to memory)")
    servers = start_rasa_only(tmp_path, section)

    def answered() -> tuple | None:
        try:
            status, body = health(servers)
        except OSError:
            return None
        loading = body.get("error") == "the model and tracker store are not loaded yet"
        return None if loading else (status, body)

    try:
        status, body = wait_until(answered, 120, "the health check to answer")
        assert servers.rasa_proc.poll() is None
        assert status == 503, body
        assert "InMemoryTrackerStore" in body["error"]
    finally:
        servers.stop()


@pytest.fixture(scope="module")
def postgres_fleet(model):
    reason = postgres_missing()
    if reason:
        missing(reason)
    pg = Postgres().start()
    try:
        env = {"ACTION_SERVER_TIMEOUT": str(ACTION_TIMEOUT)}
        with running_servers(tracker_store=pg.endpoints_section(startup_wait=5), env=env) as s:
            s.postgres = pg
            yield s
    finally:
        pg.remove()


def test_logs_of_the_faults_contain_no_message_text(fleet):
    """Her words during each fault (action server down, hung, database gone): never logged."""
    said = {
        "down": "I am bleeding and my calf hurts, action server down",
        "hung": "my hip burns on the outside while the actions hang",
        "db": "twenty nine weeks and my glute stabs, database gone",
    }
    sender = f"log-faults-{uuid.uuid4().hex[:8]}"
    at_stage_question(fleet, sender)
    fleet.stop_actions(kill=True)
    try:
        say(fleet, sender, said["down"])
    finally:
        fleet.start_actions()
    os.kill(fleet.actions_proc.pid, signal.SIGSTOP)
    try:
        say(fleet, sender, said["hung"])
    finally:
        os.kill(fleet.actions_proc.pid, signal.SIGCONT)
    moved = break_sqlite(fleet.db)
    try:
        say(fleet, sender, said["db"])
    finally:
        fleet.db.rmdir()
        moved.rename(fleet.db)
    say(fleet, sender, "hello")  # a barrier: every log line of the faults is written
    for name in ("rasa.log", "actions.log"):
        log = fleet.log(name)
        assert "ERROR" in fleet.log() or name == "actions.log"
        for text in said.values():
            assert text not in log, f"{name} contains {text!r}"


def test_an_action_error_that_echoes_her_words_is_not_logged_by_rasa(fleet):
    """Rasa SDK's own error reply carries the whole request (her conversation) and the
    exception's message; Rasa logs the failure without that body."""
    import http.server

    words = "my waters might have gone and I feel dizzy, echoed by the action server"

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body = json.dumps({"error": f"failed on {words}", "request_body": request}).encode()
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    sender = f"log-echo-{uuid.uuid4().hex[:8]}"
    at_stage_question(fleet, sender)
    fleet.stop_actions(kill=True)
    echo = http.server.ThreadingHTTPServer(("127.0.0.1", fleet.actions_port), Echo)
    thread = threading.Thread(target=echo.serve_forever, daemon=True)
    thread.start()
    try:
        reply = say(fleet, sender, words)
        assert reply, "she got no answer"
    finally:
        echo.shutdown()
        echo.server_close()
        fleet.start_actions()
    say(fleet, sender, "hello")  # a barrier: every log line of the fault is written
    log = fleet.log("rasa.log")
    assert "failed" in log
    assert words not in log and "dizzy" not in log and "request_body" not in log


def test_postgresql_down_during_a_conversation_and_back(postgres_fleet):
    servers = postgres_fleet
    sender = f"pg-{uuid.uuid4().hex[:8]}"
    at_stage_question(servers, sender)
    before = servers.tracker(sender)
    servers.postgres.stop()
    injected("PostgreSQL stopped during a conversation")
    try:
        status, body = health(servers)
        assert status == 503, body
        reply = say(servers, sender, "I'm pregnant")
        assert len(reply) == 1 and is_apology(reply[0]["text"]), texts(reply)
    finally:
        servers.postgres.start()
    wait_until(lambda: health(servers)[0] == 200, 30, "the health check to recover")
    assert servers.tracker(sender)["events"] == before["events"]
    say(servers, sender, "I'm pregnant")
    assert slots(servers, sender)["requested_slot"] == NEXT_AFTER_STAGE
    final, _, _ = run_dialogue(servers, f"pg-full-{uuid.uuid4().hex[:8]}", OPENING, ANSWERS)
    assert final["triage"]
    assert "Tracker database error" in servers.log()
