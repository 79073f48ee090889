"""An action that fails never puts her words in a log or in the action server's answer.

Rasa SDK's own error handler logs the exception with its message and answers with the
whole request (her conversation); scripts/action_server.py answers and logs the action's
name and the exception's type only. Run against `rasa run actions` (Rasa SDK's own
server), this test fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.ports import free_port, wait_for, wait_until

ROOT = Path(__file__).resolve().parents[2]
WORDS = "I think I am bleeding heavily since this morning"


def call(port: int) -> tuple[int, str]:
    body = {
        "next_action": "action_fail_loudly",
        "sender_id": "web:0123456789abcdef0123456789abcdef",
        "version": "3.6.21",
        "tracker": {
            "sender_id": "web:0123456789abcdef0123456789abcdef",
            "slots": {},
            "latest_message": {"text": WORDS, "intent": {}, "entities": []},
            "events": [{"event": "user", "text": WORDS}],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        },
        "domain": {},
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhook",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.xdist_group("action_errors")
def test_a_failing_action_names_itself_and_nothing_she_wrote(tmp_path):
    port = free_port()
    log = tmp_path / "actions.log"
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    args = [sys.executable, "scripts/action_server.py", "--actions",
            "tests.support.failing_actions", "--port", str(port)]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{port}/health", 60, proc)
        status, answer = call(port)
        wait_until(lambda: "ValueError" in log.read_text(), 10, "the error in the log")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    text = log.read_text()
    assert status == 500
    assert json.loads(answer) == {"error": "ValueError", "action_name": "action_fail_loudly"}
    assert "Action 'action_fail_loudly' failed: ValueError" in text
    for said in (WORDS, "bleeding", "heavily"):
        assert said not in text and said not in answer, f"{said!r} leaked"
