"""Load: 200 full interviews at once through the REST channel, on loopback.

Zero errors, every interview reaches its outcome, and no cross-talk: each tracker holds
exactly its own sender's messages and the case built from her own answers. Bounded in
count (LOAD_CONVERSATIONS, default 200) and time (LOAD_SECONDS, default 300).
Run alone with `make test-reliability` or `pytest tests/integration/test_load.py -s`.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
import yaml

from actions import render
from tests.integration.servers import MODEL, ROOT, running_servers

CONVERSATIONS = int(os.environ.get("LOAD_CONVERSATIONS", "200"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "300"))
MAX_TURNS = 25
CLINIC_STORE = (
    "tracker_store:\n  type: store.tracker_store.ClinicTrackerStore\n"
    '  dialect: sqlite\n  db: "{workdir}/t.db"\n  startup_wait: 5\n'
)


def question_slots() -> dict[str, str]:
    """Every question text of the domain -> the case field it asks for."""
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    found = {}
    for name, variants in domain["responses"].items():
        if name.startswith("utter_ask_"):
            for variant in variants:
                found[" ".join(variant["text"].split())] = name[len("utter_ask_") :]
    for stage in ("pregnant", "postpartum", None):
        for reasked in (False, True):
            text = render.screen_question(stage, reasked)["text"]
            found[" ".join(text.split())] = "red_flags"
    return found


class Patient:
    """One scripted patient with answers of her own, so cross-talk would show."""

    def __init__(self, index: int) -> None:
        self.sender = f"load-{index}-{uuid.uuid4().hex[:8]}"
        self.weeks = 4 + index % 38
        self.severity = index % 11
        self.weeks_of_pain = 1 + index % 8
        self.opening = (
            f"I'm {self.weeks} weeks pregnant and the outside of my hip burns ({self.sender})"
        )
        self.answers = {
            "red_flags": "none of these",
            "severity": f"{self.severity} out of 10",
            "weeks_of_pain": f"for {self.weeks_of_pain} weeks",
            "down_side_of_leg": "no",
            "numbness_tingling": "no",
            "below_knee": "no",
            "wakes_at_night": "no",
            "limits_daily_life": "no",
            "exercising": "no",
            "labral_tear": "no",
        }
        self.said: list[str] = []
        self.latencies: list[float] = []


async def interview(session, url: str, patient: Patient, questions: dict) -> None:
    text = patient.opening
    for _ in range(MAX_TURNS):
        patient.said.append(text)
        started = time.monotonic()
        async with session.post(
            f"{url}/webhooks/rest/webhook", json={"sender": patient.sender, "message": text}
        ) as response:
            assert response.status == 200, (patient.sender, response.status)
            reply = await response.json()
        patient.latencies.append(time.monotonic() - started)
        assert reply, (patient.sender, text)
        last = " ".join(reply[-1].get("text", "").split())
        if last.startswith("Based on:"):  # the outcome's last message
            return
        field = questions.get(last)
        assert field, f"{patient.sender}: not a question: {last!r}"
        text = patient.answers.get(field, "not sure")
    raise AssertionError(f"{patient.sender}: no outcome after {MAX_TURNS} turns")


async def run_all(url: str, patients: list[Patient]) -> list:
    questions = question_slots()
    timeout = aiohttp.ClientTimeout(total=SECONDS)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        return await asyncio.gather(
            *(interview(session, url, p, questions) for p in patients), return_exceptions=True
        )


async def fetch_trackers(url: str, token: str, patients: list[Patient]) -> dict:
    async with aiohttp.ClientSession() as session:

        async def one(patient: Patient):
            async with session.get(
                f"{url}/conversations/{patient.sender}/tracker", params={"token": token}
            ) as response:
                assert response.status == 200
                return patient.sender, await response.json()

        results = []
        for start in range(0, len(patients), 20):
            results += await asyncio.gather(*(one(p) for p in patients[start : start + 20]))
        return dict(results)


@pytest.fixture(scope="module")
def fleet():
    if not MODEL.exists():
        pytest.fail(f"{MODEL} is missing: run `make train` first")
    # The action server as deployments start it (loopback, long keep-alive).
    actions = [sys.executable, "scripts/action_server.py", "--port", "{port}"]
    with running_servers(tracker_store=CLINIC_STORE, actions_cmd=actions) as s:
        yield s


def test_concurrent_interviews_without_errors_or_cross_talk(fleet):
    patients = [Patient(i) for i in range(CONVERSATIONS)]
    started = time.monotonic()
    results = asyncio.run(run_all(fleet.url, patients))
    took = time.monotonic() - started
    outcomes = zip(patients, results, strict=True)
    errors = [(p.sender, repr(r)[:300]) for p, r in outcomes if r is not None]
    latencies = sorted(x for p in patients for x in p.latencies)
    turns = len(latencies)
    p50 = statistics.median(latencies) if latencies else 0
    p95 = latencies[int(0.95 * (turns - 1))] if latencies else 0
    print(
        f"\nload: {CONVERSATIONS} concurrent interviews, {turns} turns in {took:.1f} s "
        f"({turns / took:.1f} turns/s), latency p50 {p50:.2f} s, p95 {p95:.2f} s, "
        f"max {max(latencies, default=0):.2f} s, errors {len(errors)}"
    )
    if errors:
        for name in ("rasa.log", "actions.log"):
            lines = (fleet.workdir / name).read_text(errors="replace").splitlines()
            print(f"--- {name}:", *[x[:300] for x in lines if "ERROR" in x][:15], sep="\n")
    assert not errors, errors[:5]
    assert took < SECONDS

    trackers = asyncio.run(fetch_trackers(fleet.url, fleet.token, patients))
    lost = []
    for patient in patients:
        tracker = trackers[patient.sender]
        said = [e["text"] for e in tracker["events"] if e["event"] == "user"]
        if said != patient.said:
            lost.append((patient.sender, "messages", said, patient.said))
        slots = tracker["slots"]
        expected = {"stage": "pregnant", "weeks": patient.weeks, "severity": patient.severity,
                    "weeks_of_pain": patient.weeks_of_pain, "red_flags": []}  # fmt: skip
        got = {key: slots[key] for key in expected}
        if got != expected:
            lost.append((patient.sender, "case", got, expected))
        if not slots["triage"] or tracker["sender_id"] != patient.sender:
            lost.append((patient.sender, "outcome", slots["triage"], tracker["sender_id"]))
        others = [e for e in tracker["events"] if e["event"] == "user"
                  and "load-" in e["text"] and patient.sender not in e["text"]]  # fmt: skip
        if others:
            lost.append((patient.sender, "cross-talk", others[:1], None))
    print(f"load: {len(patients)} trackers checked, {len(lost)} problems")
    assert not lost, lost[:5]
    log = Path(fleet.workdir / "rasa.log").read_text(errors="replace")
    print(f"load: {log.count('Retrying custom action')} action calls retried on a new connection")
    assert "Tracker database error" not in log and "could not be handled" not in log
