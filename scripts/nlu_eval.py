"""Scores the trained model on the held-out NLU set: intent F1 and value-level entity F1.

Usage: python scripts/nlu_eval.py [MODEL] [HELDOUT]   (prints JSON, writes results/)

Entities are compared by (field, value): what the form needs, whatever the span.
Numbers match within 1 (weeks) or 0.5 (others); booleans and words as lowercase text.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # our NLU component lives in components/
DEFAULT_MODEL = ROOT / "models" / "hip-triage.tar.gz"
DEFAULT_SET = ROOT / "tests" / "nlu_heldout.yml"


def _norm(entity: str, value: Any) -> Any:
    text = str(value).strip().lower()
    try:
        return float(text)
    except ValueError:
        return text


def _same(entity: str, a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= (1.0 if entity in ("weeks", "weeks_of_pain") else 0.5)
    return a == b


def _match(expected: list[tuple], found: list[tuple]) -> int:
    left, hits = list(found), 0
    for entity, value in expected:
        for i, (f_entity, f_value) in enumerate(left):
            if f_entity == entity and _same(entity, value, f_value):
                hits += 1
                del left[i]
                break
    return hits


def _unique(pairs: Any) -> list[tuple]:
    return list(dict.fromkeys(pairs))


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


async def evaluate(model: Path, heldout: Path) -> dict:
    """Parses every held-out message with the model and scores intents and entities."""
    from rasa.core.agent import Agent
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(heldout))
    agent = Agent.load(str(model))
    gold_intents, pred_intents, per_field = [], [], Counter()
    tp = n_expected = n_found = 0
    misses = []
    for message in data.intent_examples:
        text = message.get("text")
        parsed = await agent.parse_message(text)
        gold, pred = message.get("intent"), parsed["intent"]["name"]
        gold_intents.append(gold)
        pred_intents.append(pred)
        expected = [
            (e["entity"], _norm(e["entity"], e["value"])) for e in message.get("entities") or []
        ]
        found = [
            (e["entity"], _norm(e["entity"], e["value"]))
            for e in parsed["entities"]
            if e.get("extractor") == "CaseEntityExtractor"
            and e["entity"] not in ("number", "duration")
        ]
        expected, found = _unique(expected), _unique(found)
        hits = _match(expected, found)
        tp, n_expected, n_found = tp + hits, n_expected + len(expected), n_found + len(found)
        for entity, _ in expected:
            per_field[(entity, "expected")] += 1
        for entity, _ in found:
            per_field[(entity, "found")] += 1
        for entity, value in expected:
            if _match([(entity, value)], found):
                per_field[(entity, "hit")] += 1
        if hits < len(expected) or hits < len(found) or gold != pred:
            misses.append(
                {"text": text, "intent": [gold, pred], "expected": expected, "found": found}
            )

    labels = sorted(set(gold_intents))
    f1s = []
    for label in labels:
        t = sum(g == p == label for g, p in zip(gold_intents, pred_intents, strict=True))
        p_all = sum(p == label for p in pred_intents)
        g_all = sum(g == label for g in gold_intents)
        f1s.append(_f1(t / p_all if p_all else 0.0, t / g_all if g_all else 0.0))
    precision = tp / n_found if n_found else 0.0
    recall = tp / n_expected if n_expected else 0.0
    fields = sorted({k[0] for k in per_field})
    return {
        "messages": len(gold_intents),
        "intent_accuracy": round(
            sum(g == p for g, p in zip(gold_intents, pred_intents, strict=True))
            / len(gold_intents),
            4,
        ),
        "intent_macro_f1": round(sum(f1s) / len(f1s), 4),
        "entity_precision": round(precision, 4),
        "entity_recall": round(recall, 4),
        "entity_f1": round(_f1(precision, recall), 4),
        "entities_expected": n_expected,
        "red_flag_recall": round(
            per_field[("red_flags", "hit")] / max(1, per_field[("red_flags", "expected")]), 4
        ),
        "per_field_recall": {
            f: round(per_field[(f, "hit")] / per_field[(f, "expected")], 3)
            for f in fields
            if per_field[(f, "expected")]
        },
        "misses": misses,
    }


def main() -> int:
    """Prints the scores (without the misses) and writes the full report to results/."""
    import logging

    logging.disable(logging.WARNING)
    model = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_MODEL
    heldout = Path(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_SET
    report = asyncio.run(evaluate(model, heldout))
    out = ROOT / "results" / "nlu_heldout.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v for k, v in report.items() if k != "misses"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
