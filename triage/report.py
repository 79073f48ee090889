"""Rules report: ``python -m triage.report [--vignettes PATH] [--strict]``.

For each rule in the rulebook, prints its id, kind, the source it cites (id,
section and passage) and how many vignettes in ``tests/vignettes.yml`` fire
it. Rules no vignette fires are flagged; with ``--strict`` they make the exit
code 1.
"""

from __future__ import annotations

import sys
import textwrap
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_VIGNETTES = Path(__file__).resolve().parents[1] / "tests" / "vignettes.yml"
KINDS = (
    ("red_flags", "red flag"),
    ("patterns", "pattern"),
    ("not_covered", "not covered"),
    ("book_pt", "book PT"),
    ("labral_tear", "labral tear"),
)


def rules(book: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Lists the rulebook's rules as (key, kind, rule); key is ``section/id``."""
    found = []
    for section, kind in KINDS:
        items = book[section] if isinstance(book[section], list) else [book[section]]
        found += [(f"{section}/{rule['id']}", kind, rule) for rule in items]
    return found


def count_fired(vignettes: list[dict[str, Any]]) -> tuple[Counter, list[str]]:
    """Counts, per rule key, the vignettes that fire it; also returns errors."""
    from . import CaseError, triage

    counts: Counter = Counter()
    errors = []
    for number, vignette in enumerate(vignettes, 1):
        name = vignette.get("id", f"#{number}") if isinstance(vignette, dict) else f"#{number}"
        try:
            outcome = triage(vignette["case"])
        except (CaseError, KeyError, TypeError) as exc:
            errors.append(f"vignette {name}: {exc}")
            continue
        counts.update(set(outcome["fired_rules"]))
    return counts, errors


def render(book: dict[str, Any], counts: Counter, total: int, where: str) -> tuple[str, int]:
    """Formats the report; returns the text and the number of rules without a vignette."""
    sources = {s["id"]: s for s in book["sources"]}
    listed = rules(book)
    lines = [f"Rulebook: {len(listed)} rules; {total} vignettes in {where}", ""]
    uncovered = []
    for key, kind, rule in listed:
        n = counts.get(key, 0)
        extra = f" [{rule['urgency']}]" if kind == "red flag" else ""
        flag = "   <-- NO VIGNETTE fires this rule" if n == 0 else ""
        lines.append(f"{key}{extra}")
        lines.append(f"  kind: {kind}   vignettes: {n}{flag}")
        for cite in [rule, *rule.get("also", ())]:
            source = sources[cite["source"]]
            how = "quote" if source["kind"] == "document" else "summary"
            where_from = source.get("file") or f"{source['publisher']}: {source['title']}"
            lines.append(f"  source: {cite['source']} ({where_from}), '{cite['section']}'")
            passage = textwrap.fill(
                f'{how}: "{" ".join(cite["passage"].split())}"',
                width=96,
                initial_indent="    ",
                subsequent_indent="      ",
            )
            lines.append(passage)
        lines.append("")
        if n == 0:
            uncovered.append(key)
    if uncovered:
        lines.append(f"{len(uncovered)} rule(s) without a vignette: {', '.join(uncovered)}")
    else:
        lines.append("Every rule is fired by at least one vignette.")
    return "\n".join(lines), len(uncovered)


def main(argv: Sequence[str] | None = None) -> int:
    """Prints the report; returns 0 (or 1 with --strict when a rule has no vignette)."""
    args = list(sys.argv[1:] if argv is None else argv)
    strict = "--strict" in args
    args = [a for a in args if a != "--strict"]
    path = DEFAULT_VIGNETTES
    if args[:1] == ["--vignettes"] and len(args) == 2:
        path = Path(args[1])
    elif args:
        print("usage: python -m triage.report [--vignettes PATH] [--strict]", file=sys.stderr)
        return 2

    from . import rulebook
    from .loader import read_yaml

    try:
        data = read_yaml(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        print(f"{path}: cannot read the vignettes ({exc.strerror})", file=sys.stderr)
        return 2
    vignettes = data.get("vignettes", []) if isinstance(data, dict) else []
    counts, errors = count_fired(vignettes)
    text, uncovered = render(rulebook(), counts, len(vignettes), str(path))
    print(text)
    for error in errors:
        print(error, file=sys.stderr)
    return 1 if errors or (strict and uncovered) else 0


if __name__ == "__main__":
    raise SystemExit(main())
