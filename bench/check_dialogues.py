"""Checks the benchmark dialogues' expected outcomes against the triage engine.

Each interview is replayed offline with the project's own question logic
(`actions.interview.questions_to_ask`): the opening sets `opening_case`, each
asked field gets its scripted meaning (or stays unknown when unscripted or
"not sure"), an emergency red flag ends it. The case it ends with is piped
through ``python -m actions.triage -`` and every `expect` key is compared.

    .venv/bin/python -m bench.check_dialogues [bench/dialogues.yml]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
DIALOGUES = ROOT / "bench" / "dialogues.yml"
MAX_QUESTIONS = 40


def load_dialogues(path: Path = DIALOGUES) -> list[dict[str, Any]]:
    """Reads the dialogue file and checks its shape.

    Raises:
        ValueError: if a dialogue lacks a key, or ids repeat.
    """
    dialogues = yaml.safe_load(path.read_text())["dialogues"]
    seen: set[str] = set()
    for d in dialogues:
        for key in ("id", "opening", "opening_case", "answers", "expect"):
            if key not in d:
                raise ValueError(f"{d.get('id', '?')}: missing {key}")
        if d["id"] in seen:
            raise ValueError(f"duplicate dialogue id {d['id']}")
        seen.add(d["id"])
    return dialogues


def answer_texts(dialogue: dict[str, Any]) -> dict[str, str]:
    """The text she types for each field, as the load generator sends it."""
    return {field: pair[0] for field, pair in (dialogue.get("answers") or {}).items()}


def _merge(slots: dict[str, Any], updates: dict[str, Any]) -> None:
    from actions.interview import kind

    for field, value in updates.items():
        if kind(field) == "list" and slots.get(field):
            slots[field] = list(dict.fromkeys([*slots[field], *value]))
        else:
            slots[field] = value


def _emergency(slots: dict[str, Any]) -> bool:
    from triage import red_flag_urgency

    return any(red_flag_urgency(f) == "emergency" for f in slots.get("red_flags") or [])


def simulate(dialogue: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Replays the interview with perfect understanding.

    Returns:
        The case it ends with, and the fields asked in order.
    """
    from actions import interview

    slots: dict[str, Any] = {}
    _merge(slots, dict(dialogue["opening_case"]))
    skipped: list[str] = []
    asked: list[str] = []
    answers = dialogue.get("answers") or {}
    for _ in range(MAX_QUESTIONS):
        if _emergency(slots):
            break
        questions = interview.questions_to_ask(slots, skipped)
        if not questions:
            break
        field = questions[0]
        asked.append(field)
        meaning = answers.get(field, [None, None])[1]
        if meaning is None:
            skipped.append(field)
            continue
        if isinstance(meaning, dict):
            _merge(slots, meaning)
        else:
            _merge(slots, {field: meaning})
        if slots.get(field) is None:
            skipped.append(field)
    return interview.case_from_slots(slots), asked


def triage_cli(case: dict[str, Any]) -> dict[str, Any]:
    """Runs ``python -m actions.triage -`` on a case and returns its JSON outcome.

    Raises:
        RuntimeError: if the command fails (invalid case).
    """
    proc = subprocess.run(
        [sys.executable, "-m", "actions.triage", "-"],
        input=json.dumps(case),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"triage failed ({proc.returncode}): {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def check(path: Path = DIALOGUES) -> list[str]:
    """Returns one problem line per wrong expectation (empty when all hold)."""
    problems = []
    for dialogue in load_dialogues(path):
        case, asked = simulate(dialogue)
        try:
            outcome = triage_cli(case)
        except RuntimeError as exc:
            problems.append(f"{dialogue['id']}: {exc}")
            continue
        for key, value in dialogue["expect"].items():
            if outcome.get(key) != value:
                problems.append(
                    f"{dialogue['id']}: {key} is {outcome.get(key)!r}, expected {value!r}"
                    f" (case {case}, asked {asked})"
                )
    return problems


def questions_asked(path: Path = DIALOGUES) -> dict[str, float]:
    """Questions per interview over the dialogues (median, max), the safety screen included."""
    counts = [len(simulate(dialogue)[1]) for dialogue in load_dialogues(path)]
    return {"median": statistics.median(counts), "max": max(counts), "dialogues": len(counts)}


def outcome_words(path: Path = DIALOGUES) -> dict[str, Any]:
    """Words of each dialogue's outcome as sent (actions.render), median and max.

    The headline bubble, and everything before she taps (after any urgent advice).
    """
    from actions import render
    from triage import triage

    headline, total = [], []
    for dialogue in load_dialogues(path):
        case, _ = simulate(dialogue)
        outcome = triage(case)
        messages = render.outcome_messages(case, outcome)
        start = next(i for i, m in enumerate(messages) if m.get("buttons") == [render.BOOK_BUTTON])
        headline.append(len(messages[start]["text"].split()))
        total.append(sum(len(m["text"].split()) for m in messages[start:]))
    return {
        "dialogues": len(total),
        "headline": {"median": statistics.median(headline), "max": max(headline), "limit": 60},
        "before_a_tap": {"median": statistics.median(total), "max": max(total), "limit": 150},
    }


def main() -> int:
    """Prints each problem and the questions per interview; exits 1 if any problem."""
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DIALOGUES
    sys.path.insert(0, str(ROOT))
    problems = check(path)
    for line in problems:
        print(line)
    asked = questions_asked(path)
    print(f"{len(load_dialogues(path))} dialogues, {len(problems)} wrong expectations; "
          f"questions per interview: median {asked['median']:g}, max {asked['max']}")  # fmt: skip
    words = outcome_words(path)
    print(f"outcome words: headline median {words['headline']['median']:g}, max "
          f"{words['headline']['max']} (limit 60); before a tap median "
          f"{words['before_a_tap']['median']:g}, max {words['before_a_tap']['max']} "
          "(limit 150)")  # fmt: skip
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
