"""Intent and entity F1 on the held-out NLU set: the project's one NLU scorer.

    .venv/bin/python -m bench.nlu_eval [--model M] [SET]   # in-process; prints JSON

The benchmark scores through a running server's `/model/parse`; the command line
loads the model in-process. Both run `Agent.parse_message` (the whole NLU pipeline,
fallback and red-flag override included), so the intent scored is the one the
dialogue sees.
Entities are matched by value, not by character span: a message's gold
(entity, value) pairs against the pairs an extractor returned, counted as
multisets. Helper entities not in the annotation schema (`number`, `duration`)
are ignored. Values compare as lower-case strings, numbers rounded to 0.1.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

ANNOTATION = re.compile(r"\[(?P<text>[^\]]+)\](?P<meta>\{[^}]*\}|\((?P<name>[^)]+)\))")
IGNORED_ENTITIES = {"number", "duration"}


def norm(value: Any) -> str:
    """A comparable form of an entity value."""
    if isinstance(value, bool):
        return str(value).lower()
    try:
        return f"{round(float(value), 1):g}"
    except (TypeError, ValueError):
        return str(value).strip().lower()


def parse_example(line: str) -> tuple[str, list[tuple[str, str]]]:
    """Plain text and gold (entity, value) pairs of one Rasa YAML example."""
    gold: list[tuple[str, str]] = []

    def plain(match: re.Match) -> str:
        text = match.group("text")
        if match.group("name"):
            gold.append((match.group("name"), norm(text)))
        else:
            meta = json.loads(match.group("meta"))
            gold.append((meta["entity"], norm(meta.get("value", text))))
        return text

    return ANNOTATION.sub(plain, line), gold


def load_examples(path: Path) -> list[dict[str, Any]]:
    """The held-out examples: text, intent, gold entity pairs."""
    data = yaml.safe_load(path.read_text())
    examples = []
    for block in data.get("nlu", []):
        if "intent" not in block:
            continue
        for raw in str(block.get("examples", "")).splitlines():
            raw = raw.strip()
            if not raw.startswith("- "):
                continue
            text, gold = parse_example(raw[2:].strip())
            examples.append({"text": text, "intent": block["intent"], "entities": gold})
    return examples


def _parse(url: str, token: str, text: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{url}/model/parse?token={token}",
        data=json.dumps({"text": text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    """Precision, recall and F1 from counts."""
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}


def intent_scores(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Accuracy, weighted and macro F1 over (gold, predicted) intent pairs."""
    labels = sorted({g for g, _ in pairs})
    per = {}
    for label in labels:
        tp = sum(1 for g, p in pairs if g == label and p == label)
        fp = sum(1 for g, p in pairs if g != label and p == label)
        fn = sum(1 for g, p in pairs if g == label and p != label)
        per[label] = prf(tp, fp, fn)
    total = len(pairs)
    weighted = sum(s["f1"] * s["support"] for s in per.values()) / total if total else 0.0
    return {
        "n": total,
        "accuracy": sum(1 for g, p in pairs if g == p) / total if total else 0.0,
        "weighted_f1": weighted,
        "macro_f1": sum(s["f1"] for s in per.values()) / len(per) if per else 0.0,
        "per_intent": per,
    }


def entity_scores(rows: list[dict[str, Any]], extractor: str | None) -> dict[str, Any]:
    """Micro F1 (and per entity) of one extractor's values (None: all extractors)."""
    totals: Counter = Counter()
    per: dict[str, Counter] = {}
    for row in rows:
        gold = Counter(row["gold"])
        pred = Counter(
            (e["entity"], norm(e["value"]))
            for e in row["predicted"]
            if e["entity"] not in IGNORED_ENTITIES
            and (extractor is None or e.get("extractor") == extractor)
        )
        for name in {n for n, _ in gold} | {n for n, _ in pred}:
            g = Counter({k: v for k, v in gold.items() if k[0] == name})
            p = Counter({k: v for k, v in pred.items() if k[0] == name})
            tp = sum((g & p).values())
            counts = per.setdefault(name, Counter())
            counts.update(tp=tp, fp=sum(p.values()) - tp, fn=sum(g.values()) - tp)
            totals.update(tp=tp, fp=sum(p.values()) - tp, fn=sum(g.values()) - tp)
    micro = prf(totals["tp"], totals["fp"], totals["fn"])
    return {
        **micro,
        "per_entity": {n: prf(c["tp"], c["fp"], c["fn"]) for n, c in sorted(per.items())},
    }


def evaluate(url: str, token: str, path: Path, workers: int = 2) -> dict[str, Any]:
    """Parses every held-out example through the server and scores intents and entities."""
    examples = load_examples(path)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parsed = list(pool.map(lambda ex: _parse(url, token, ex["text"]), examples))
    return score(examples, parsed, "server /model/parse (Agent.parse_message)")


def evaluate_model(model: Path, path: Path) -> dict[str, Any]:
    """Parses every held-out example with the model loaded in this process, and scores."""
    import asyncio

    from rasa.core.agent import Agent

    examples = load_examples(path)
    agent = Agent.load(str(model))

    async def parse_all() -> list[dict[str, Any]]:
        return [await agent.parse_message(example["text"]) for example in examples]

    return score(examples, asyncio.run(parse_all()), "in-process Agent.parse_message")


def score(examples: list[dict[str, Any]], parsed: list[dict[str, Any]], how: str) -> dict:
    """Intent and value-level entity scores of parse results against the examples."""
    rows, pairs = [], []
    for example, result in zip(examples, parsed, strict=True):
        predicted = (result.get("intent") or {}).get("name") or "None"
        pairs.append((example["intent"], predicted))
        rows.append(
            {
                "text": example["text"],
                "intent": example["intent"],
                "predicted_intent": predicted,
                "gold": example["entities"],
                "predicted": [
                    {k: e.get(k) for k in ("entity", "value", "extractor")}
                    for e in result.get("entities") or []
                ],
            }
        )
    extractors = sorted({e["extractor"] for r in rows for e in r["predicted"] if e["extractor"]})
    return {
        "method": f"{how}, value-level entity matching",
        "intent": intent_scores(pairs),
        "entities": {
            "all": entity_scores(rows, None),
            **{name: entity_scores(rows, name) for name in extractors},
        },
        "errors": [
            {"text": r["text"], "gold": r["intent"], "predicted": r["predicted_intent"]}
            for r in rows
            if r["intent"] != r["predicted_intent"]
        ],
    }


def main(argv: list[str] | None = None) -> int:
    """Scores the trained model in-process; prints JSON (errors listed last)."""
    import argparse
    import logging

    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", nargs="?", default=root / "tests" / "nlu_heldout.yml", type=Path)
    parser.add_argument("--model", default=root / "models" / "hip-triage.tar.gz", type=Path)
    args = parser.parse_args(argv)
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # Rasa's debug lines carry the message text
    logging.disable(logging.WARNING)
    print(json.dumps(evaluate_model(args.model, args.set), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
