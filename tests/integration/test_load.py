"""Load: 200 full interviews at once through the REST channel, on loopback.

Zero errors, every interview reaches its outcome, and no cross-talk: each tracker holds
exactly its own sender's messages and the case built from her own answers. Bounded in
count (LOAD_CONVERSATIONS, default 200) and time (LOAD_SECONDS, default 300, the client's
timeout). On the shared app; the driver is the one of tests/support/dialogue.py.
Run alone with `make test-reliability` or `pytest tests/integration/test_load.py -s`.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid

import aiohttp
import pytest

from tests.support.dialogue import Script, arun_dialogue

CONVERSATIONS = int(os.environ.get("LOAD_CONVERSATIONS", "200"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "300"))
MAX_TURNS = 25


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


async def interview(session, servers, patient: Patient) -> None:
    async def say(text: str) -> None:
        patient.said.append(text)
        started = time.monotonic()
        body = {"sender": patient.sender, "message": text}
        async with session.post(f"{servers.url}/webhooks/rest/webhook", json=body) as response:
            assert response.status == 200, (patient.sender, response.status)
            assert await response.json(), (patient.sender, text)
        patient.latencies.append(time.monotonic() - started)

    async def slots() -> dict:
        url = f"{servers.url}/conversations/{patient.sender}/tracker"
        params = {"token": servers.token, "include_events": "NONE"}
        async with session.get(url, params=params) as response:
            assert response.status == 200, (patient.sender, response.status)
            return (await response.json())["slots"]

    await arun_dialogue(say, slots, Script(patient.opening, patient.answers, MAX_TURNS))


async def run_all(servers, patients: list[Patient]) -> list:
    timeout = aiohttp.ClientTimeout(total=SECONDS)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        return await asyncio.gather(
            *(interview(session, servers, p) for p in patients), return_exceptions=True
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


@pytest.fixture
def fleet(servers):
    return servers


def test_concurrent_interviews_without_errors_or_cross_talk(fleet):
    patients = [Patient(i) for i in range(CONVERSATIONS)]
    started = time.monotonic()
    results = asyncio.run(run_all(fleet, patients))
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
            lines = fleet.log(name).splitlines()
            print(f"--- {name}:", *[x[:300] for x in lines if "ERROR" in x][:15], sep="\n")
    assert not errors, errors[:5]

    trackers = asyncio.run(fetch_trackers(fleet.url, fleet.token, patients))
    lost = []
    for patient in patients:
        tracker = trackers[patient.sender]
        said = [e["text"] for e in tracker["events"] if e["event"] == "user"]
        if said != patient.said:
            lost.append((patient.sender, "messages", said, patient.said))
        slots = tracker["slots"]
        # The opening and the screen always; her other answers where she was asked them
        # (the interview asks only what can change the outcome): each must be her own.
        expected = {"stage": "pregnant", "weeks": patient.weeks, "red_flags": []}
        for key, value in (("severity", patient.severity),
                           ("weeks_of_pain", patient.weeks_of_pain)):  # fmt: skip
            if slots[key] is not None:
                expected[key] = value
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
    log = fleet.log()
    print(f"load: {log.count('Retrying custom action')} action calls retried on a new connection")
    assert "Tracker database error" not in log and "could not be handled" not in log
