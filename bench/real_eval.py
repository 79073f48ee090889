"""The real-language corpus: how well the assistant reads real women's words.

    .venv/bin/python -m bench.real_eval [--part dev|test|both] [--show] [--model M]

Each text of tests/corpus/{dev,test}.yml (first-person accounts modelled on public
pages, labelled with the contract's fields; tests/corpus/README.md) is the opening
message of a new conversation with the real servers (the shipped tracker store, the
action server). After that first reply it reads the case (the slots) and what the
reply did about warning signs:

- urgent advice: the reply gives the urgent advice (the rulebook's text, ⚠️ first);
- a confirming question: the reply asks about one warning sign (requested slot
  `red_flag_confirm`), or the safety screen's "is any of these happening?".

`--offline` skips the servers: the extractor (with the second signal,
components/red_flag_signal.py, fitted in this process; `--patterns-only` without it) and
the interview logic in this process, the same reading of the fields and of warning
signs (clear ones as urgent advice, possible ones as a confirming question) without the
dialogue; quick, for tuning the pattern files on the dev part.

It prints per-field precision, recall and F1 over (field, value) pairs (numbers within
the text's tolerance), stage recall, red-flag recall (texts with a warning sign that
got urgent advice or a confirming question), false alarms (urgent advice on texts
without one) and confirming questions on texts without one. A benchmark: it reports,
it asserts nothing. `--show` lists the misses (use it on the dev part only: the test
part is for measuring, not for tuning).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from bench.nlu_eval import prf
from tests.support.servers import MODEL, ROOT, running_servers
from triage.contract import FIELDS

CORPUS = ROOT / "tests" / "corpus"
DEFAULT_TOL = 0.15
NUMBER_FLOOR = {"weeks": 1.0, "weeks_of_pain": 0.5, "severity": 0.0}
CASE_FIELDS = [field for field in FIELDS if field != "red_flags"]
URGENT_MARK = "⚠️"


def load(part: str) -> list[dict[str, Any]]:
    """The texts of one part of the corpus."""
    return yaml.safe_load((CORPUS / f"{part}.yml").read_text(encoding="utf-8"))["texts"]


def _same_number(field: str, gold: float, got: Any, tol: float) -> bool:
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return False
    return abs(float(got) - gold) <= max(tol * abs(gold), NUMBER_FLOOR[field])


def field_counts(item: dict[str, Any], case: dict[str, Any]) -> dict[str, Counter]:
    """Tp / fp / fn per field of one text: the labels against the case it produced."""
    gold = item.get("fields") or {}
    tol = float(item.get("tol", DEFAULT_TOL))
    counts: dict[str, Counter] = {}
    for field in CASE_FIELDS:
        want, got = gold.get(field), case.get(field)
        if isinstance(got, list) and not got:
            got = None
        c = counts.setdefault(field, Counter())
        kind = FIELDS[field]["kind"]
        if kind == "list":
            want_set, got_set = set(want or ()), set(got or ())
            c.update(tp=len(want_set & got_set), fp=len(got_set - want_set))
            c.update(fn=len(want_set - got_set))
        elif want is None:
            c.update(fp=int(got is not None))
        elif got is None:
            c.update(fn=1)
        elif kind in ("int", "number"):
            ok = _same_number(field, float(want), got, tol)
            c.update(tp=int(ok), fp=int(not ok), fn=int(not ok))
        else:
            ok = got == want
            c.update(tp=int(ok), fp=int(not ok), fn=int(not ok))
    return counts


def first_reply(servers: Any, item: dict[str, Any]) -> dict[str, Any]:
    """Sends the text as an opening; the reply, the case and what it did about red flags."""
    sender = f"real-{item['id']}-{uuid.uuid4().hex[:8]}"
    reply = servers.say(sender, item["text"])
    slots = servers.slots(sender)
    texts = [m.get("text") or "" for m in reply]
    urgent = any(text.startswith(URGENT_MARK) for text in texts)
    confirming = slots.get("requested_slot") == "red_flag_confirm" or (
        slots.get("requested_slot") == "red_flags" and slots.get("reasked")
    )
    case = {field: slots.get(field) for field in CASE_FIELDS}
    return {
        "id": item["id"],
        "urgent": urgent,
        "confirming": bool(confirming) and not urgent,
        "recorded": list(slots.get("red_flags") or []),
        "asked_about": slots.get("red_flag_confirm"),
        "case": case,
        "reply": texts,
    }


def offline_reply(nlp: Any, item: dict[str, Any], signal: Any = None) -> dict[str, Any]:
    """Like `first_reply`, in-process: the extractor and the interview, no dialogue."""
    from actions import interview
    from components import extractor

    entities = [
        {**e, "extractor": interview.EXTRACTOR}
        for e in extractor.extract(nlp, item["text"], signal)
    ]
    updates = interview.updates_from_message({}, entities, "describe_pain", item["text"])
    clear = [e["value"] for e in entities if e["entity"] == "red_flags"]
    # At the first turn the stage is only what this message says: a sign that only
    # applies in pregnancy, with the stage not said, gets the confirming question.
    possible = [
        e["value"] for e in entities if e["entity"] in ("possible_red_flags", "pregnancy_red_flags")
    ]
    case = {field: updates.get(field) for field in CASE_FIELDS}
    return {
        "id": item["id"],
        "urgent": bool(clear),
        "confirming": bool(possible) and not clear,
        "recorded": clear,
        "asked_about": possible[0] if possible else None,
        "case": case,
        "reply": [],
    }


def score(items: list[dict[str, Any]], results: list[dict[str, Any]]) -> dict[str, Any]:
    """Every figure of one part."""
    totals: dict[str, Counter] = {field: Counter() for field in CASE_FIELDS}
    flagged = [(i, r) for i, r in zip(items, results, strict=True) if i["red_flags"]]
    clean = [(i, r) for i, r in zip(items, results, strict=True) if not i["red_flags"]]
    for item, result in zip(items, results, strict=True):
        for field, c in field_counts(item, result["case"]).items():
            totals[field].update(c)
    micro = Counter()
    for c in totals.values():
        micro.update(c)
    stage_gold = [(i, r) for i, r in zip(items, results, strict=True) if i["fields"].get("stage")]
    stage_hits = sum(1 for i, r in stage_gold if r["case"].get("stage") == i["fields"]["stage"])
    caught = [r for i, r in flagged if r["urgent"] or r["confirming"]]
    by_flag: dict[str, Counter] = {}
    for item, result in flagged:
        for flag in item["red_flags"]:
            c = by_flag.setdefault(flag, Counter())
            c.update(n=1, caught=int(result["urgent"] or result["confirming"]))
    possible = [(i, r) for i, r in flagged if i.get("mention") == "possible"]
    clear = [(i, r) for i, r in flagged if i.get("mention") == "clear"]
    return {
        "texts": len(items),
        "fields": {
            "micro": prf(micro["tp"], micro["fp"], micro["fn"]),
            "per_field": {
                f: {**prf(c["tp"], c["fp"], c["fn"]), "support": c["tp"] + c["fn"]}
                for f, c in totals.items()
                if c["tp"] + c["fn"] + c["fp"]
            },
        },
        "stage_recall": stage_hits / len(stage_gold) if stage_gold else None,
        "red_flags": {
            "texts": len(flagged),
            "recall": len(caught) / len(flagged) if flagged else None,
            "urgent_on_clear": sum(r["urgent"] for _, r in clear) / len(clear) if clear else None,
            "confirm_on_possible": (
                sum(r["confirming"] for _, r in possible) / len(possible) if possible else None
            ),
            "urgent_on_possible": (
                sum(r["urgent"] for _, r in possible) / len(possible) if possible else None
            ),
            "by_flag": {f: c["caught"] / c["n"] for f, c in sorted(by_flag.items())},
        },
        "without_red_flag": {
            "texts": len(clean),
            "urgent": sum(r["urgent"] for _, r in clean) / len(clean) if clean else None,
            "confirming": sum(r["confirming"] for _, r in clean) / len(clean) if clean else None,
        },
    }


def misses(items: list[dict[str, Any]], results: list[dict[str, Any]]) -> list[str]:
    """One line per text the assistant read wrongly (for the dev part)."""
    lines = []
    for item, result in zip(items, results, strict=True):
        wrong = {
            f: (item["fields"].get(f), result["case"].get(f))
            for f, c in field_counts(item, result["case"]).items()
            if c["fp"] or c["fn"]
        }
        flags = item["red_flags"]
        alarm = ""
        if flags and not (result["urgent"] or result["confirming"]):
            alarm = f"MISSED {flags}"
        elif not flags and result["urgent"]:
            alarm = f"FALSE ALARM {result['recorded']}"
        elif not flags and result["confirming"]:
            alarm = f"confirm asked ({result['asked_about']})"
        if wrong or alarm:
            lines.append(f"{item['id']}: {alarm} {wrong}\n    {item['text'][:300]}")
    return lines


def run(
    parts: list[str], model: Path, show: bool, offline: bool = False, signal: bool = True
) -> dict[str, Any]:
    """Runs the parts against fresh servers (or offline); returns {part: scores}.

    Offline, `signal=False` reads with the patterns only (what the second signal adds).
    """
    report: dict[str, Any] = {}
    if offline:
        from components import extractor, red_flag_signal

        nlp = extractor.build_nlp()
        second = red_flag_signal.default() if signal else None
        servers = contextlib.nullcontext(None)
    else:
        servers = running_servers(model=model)
    with servers as running:
        for part in parts:
            items = load(part)
            if offline:
                results = [offline_reply(nlp, item, second) for item in items]
            else:
                with ThreadPoolExecutor(max_workers=2) as pool:
                    results = list(pool.map(lambda item: first_reply(running, item), items))
            report[part] = score(items, results)
            if show:
                print(f"--- {part}: misses")
                print("\n".join(misses(items, results)))
            out = ROOT / "results" / f"real-eval-{part}.json"
            out.parent.mkdir(exist_ok=True)
            out.write_text(json.dumps({"scores": report[part], "results": results}, indent=1))
    return report


def table(report: dict[str, Any]) -> str:
    """The figures as a Markdown table, one column per part."""
    parts = list(report)

    def pct(value: Any) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    rows = [
        ("texts", [str(report[p]["texts"]) for p in parts]),
        ("field F1 (micro)", [pct(report[p]["fields"]["micro"]["f1"]) for p in parts]),
        ("field precision", [pct(report[p]["fields"]["micro"]["precision"]) for p in parts]),
        ("field recall", [pct(report[p]["fields"]["micro"]["recall"]) for p in parts]),
        ("stage recall", [pct(report[p]["stage_recall"]) for p in parts]),
        ("texts with a warning sign", [str(report[p]["red_flags"]["texts"]) for p in parts]),
        (
            "... got urgent advice or a confirming question",
            [pct(report[p]["red_flags"]["recall"]) for p in parts],
        ),
        (
            "... clear mentions: urgent advice",
            [pct(report[p]["red_flags"]["urgent_on_clear"]) for p in parts],
        ),  # fmt: skip
        (
            "... possible mentions: confirming question",
            [pct(report[p]["red_flags"]["confirm_on_possible"]) for p in parts],
        ),  # fmt: skip
        ("texts without one", [str(report[p]["without_red_flag"]["texts"]) for p in parts]),
        (
            "... urgent advice (false alarm)",
            [pct(report[p]["without_red_flag"]["urgent"]) for p in parts],
        ),  # fmt: skip
        (
            "... a confirming question",
            [pct(report[p]["without_red_flag"]["confirming"]) for p in parts],
        ),  # fmt: skip
    ]
    for field in CASE_FIELDS:
        cells = []
        for p in parts:
            f = report[p]["fields"]["per_field"].get(field)
            cells.append(
                f"{f['precision']:.2f} / {f['recall']:.2f} / {f['f1']:.2f} ({f['support']})"
                if f
                else "-"
            )
        rows.append((f"{field}: P / R / F1 (n)", cells))
    header = "| figure | " + " | ".join(parts) + " |\n|---|" + "---|" * len(parts)
    return header + "\n" + "\n".join(f"| {name} | " + " | ".join(c) + " |" for name, c in rows)


def main(argv: list[str] | None = None) -> int:
    """Runs the evaluation and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["dev", "test", "both"], default="both")
    parser.add_argument("--show", action="store_true", help="list the misses")
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--offline", action="store_true", help="no servers (see above)")
    parser.add_argument(
        "--patterns-only", action="store_true", help="offline, without the second signal"
    )
    args = parser.parse_args(argv)
    parts = ["dev", "test"] if args.part == "both" else [args.part]
    report = run(parts, args.model, args.show, args.offline, not args.patterns_only)
    print(table(report))
    (ROOT / "results").mkdir(exist_ok=True)
    (ROOT / "results" / "real-eval.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
