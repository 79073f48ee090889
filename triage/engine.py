"""A small rule evaluator: the rulebook's facts in, the triage outcome out.

The knowledge lives in ``rulebook.yml`` (checked by :mod:`triage.loader`); this
module only applies it. Conditions are ``{fact, op, value}`` mappings grouped as
``all`` (every one must be true), ``any`` (supporting: at least one true, or all
of their facts unknown; the number true is the score) and ``none`` (any true
excludes). A fact that is unknown (``None``) makes its condition neither true nor
false.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .contract import FIELDS, RED_FLAG_URGENCIES, RED_FLAGS, UNCLEAR, URGENCY_ORDER


def _test(op: str, actual: Any, value: Any) -> bool:
    if op == "eq":
        return actual == value
    if op == "ne":
        return actual != value
    if op == "in":
        return actual in value
    if op == "contains":
        return value in actual
    if op == "contains_any":
        return any(item in actual for item in value)
    if op == "contains_only":
        return bool(actual) and all(item in value for item in actual)
    if op == "gte":
        return actual >= value
    if op == "lte":
        return actual <= value
    if op == "is_true":
        return actual is True
    return actual is False  # is_false


def condition(cond: Mapping, facts: Mapping) -> bool | None:
    """Evaluates one condition: True, False, or None when its fact is unknown."""
    actual = facts.get(cond["fact"])
    if actual is None:
        return None
    return _test(cond["op"], actual, cond.get("value"))


def match(rule: Mapping, facts: Mapping) -> tuple[bool, int]:
    """Tells whether a rule matches the facts, and its score (``any`` conditions true).

    A rule matches when every ``all`` condition is true, no ``none`` condition
    is true, and some ``any`` condition is true or every one is unknown.
    """
    if not all(condition(c, facts) is True for c in rule.get("all", ())):
        return False, 0
    if any(condition(c, facts) is True for c in rule.get("none", ())):
        return False, 0
    results = [condition(c, facts) for c in rule.get("any", ())]
    score = sum(1 for r in results if r is True)
    if results and score == 0 and any(r is not None for r in results):
        return False, 0
    return True, score


def rule_facts(rule: Mapping) -> list[str]:
    """The facts a rule's conditions use, in order of first use."""
    facts: list[str] = []
    for group in ("all", "any", "none"):
        for cond in rule.get(group, ()):
            if cond["fact"] not in facts:
                facts.append(cond["fact"])
    return facts


class Engine:
    """Applies a checked rulebook to validated cases."""

    def __init__(self, book: Mapping[str, Any]) -> None:
        """Prepares lookups from a rulebook already passed by :func:`check_rulebook`."""
        self.book = book
        self.sources = {s["id"]: s for s in book["sources"]}
        self.red_flags = {r["id"]: r for r in book["red_flags"]}
        self.patterns = list(book["patterns"])
        self.pattern_by_id = {p["id"]: p for p in self.patterns}
        self._flag_rank = {
            flag: (URGENCY_ORDER.index(self.red_flags[flag]["urgency"]), index)
            for index, flag in enumerate(RED_FLAGS)
        }
        self._candidates = {field: self._field_candidates(field) for field in FIELDS}

    # -- the core: everything but the texts and `missing`

    def core(self, case: Mapping[str, Any]) -> dict[str, Any]:
        """Runs the rules on a normalized case (no texts, no ``missing``)."""
        fired: list[str] = []
        flags = sorted(case.get("red_flags") or (), key=self._flag_rank.__getitem__)
        fired += [f"red_flags/{flag}" for flag in flags]

        scored = []
        for index, rule in enumerate(self.patterns):
            ok, score = match(rule, case)
            if ok:
                scored.append((-score, -rule.get("priority", 0), index, rule["id"]))
        matches = [item[3] for item in sorted(scored)]
        pattern_match = matches[0] if matches else UNCLEAR

        facts = dict(case, pattern_match=pattern_match)
        not_covered = [r for r in self.book["not_covered"] if match(r, facts)[0]]
        if any(r["effect"] == "unclear" for r in not_covered):
            matches = []
        pattern = matches[0] if matches else UNCLEAR
        fired += [f"patterns/{p}" for p in matches]
        fired += [f"not_covered/{r['id']}" for r in not_covered]

        facts.update(pattern=pattern, not_covered=bool(not_covered))
        book_pt = [r for r in self.book["book_pt"] if match(r, facts)[0]]
        fired += [f"book_pt/{r['id']}" for r in book_pt]
        reasons = [r["reason"] for r in book_pt] + [r["reason"] for r in not_covered]

        labral = match(self.book["labral_tear"], case)[0]
        if labral:
            fired.append(f"labral_tear/{self.book['labral_tear']['id']}")

        urgencies = {self.red_flags[f]["urgency"] for f in flags}
        if reasons:
            urgencies.add("book_pt")
        urgency = next((u for u in URGENCY_ORDER if u in urgencies), "self_care")
        return {
            "urgency": urgency,
            "red_flags": flags,
            "pattern": pattern,
            "patterns": matches,
            "book_pt": bool(reasons),
            "book_pt_reasons": reasons,
            "labral_tear_note": labral,
            "fired": fired,
        }

    @staticmethod
    def _key(core: Mapping[str, Any]) -> tuple:
        return (
            core["urgency"],
            core["pattern"],
            tuple(core["patterns"]),
            core["book_pt"],
            core["labral_tear_note"],
        )

    # -- `missing`

    def _thresholds(self, field: str) -> set[float]:
        found: set[float] = set()
        rules = [*self.patterns, *self.book["not_covered"], *self.book["book_pt"]]
        for rule in [*rules, self.book["labral_tear"]]:
            for group in ("all", "any", "none"):
                for cond in rule.get(group, ()):
                    if cond["fact"] == field and cond["op"] in ("eq", "ne", "gte", "lte"):
                        found.add(cond["value"])
        return found

    def _field_candidates(self, field: str) -> list[Any]:
        spec = FIELDS[field]
        kind = spec["kind"]
        if kind == "enum":
            return list(spec["values"])
        if kind == "list":
            return [[value] for value in spec["values"]] + [[]]
        if kind == "bool":
            return [True, False]
        values: set[float] = {spec["min"]}
        if spec.get("max") is not None:
            values.add(spec["max"])
        step = 1 if kind == "int" else 0.5
        for threshold in self._thresholds(field):
            values.update({threshold - step, threshold, threshold + step})
        low, high = spec["min"], spec.get("max")
        return sorted(v for v in values if v >= low and (high is None or v <= high))

    def missing(self, case: Mapping[str, Any], core: Mapping[str, Any]) -> list[str]:
        """Unknown fields whose value would change, or firm up, the outcome."""
        baseline = self._key(core)
        found: set[str] = set()
        for field in FIELDS:
            if case.get(field) is not None:
                continue
            for candidate in self._candidates[field]:
                if self._key(self.core(dict(case, **{field: candidate}))) != baseline:
                    found.add(field)
                    break
        if core["pattern"] != UNCLEAR:
            for fact in rule_facts(self.pattern_by_id[core["pattern"]]):
                if fact in FIELDS and case.get(fact) is None:
                    found.add(fact)
        return [field for field in FIELDS if field in found]

    # -- what is worth asking

    @staticmethod
    def _decision(core: Mapping[str, Any]) -> tuple:
        """What the interview can change: the urgency, the pattern and book-a-physio."""
        return core["urgency"], core["pattern"], core["book_pt"]

    def _rules(self) -> list[Mapping[str, Any]]:
        book = self.book
        return [*self.patterns, *book["not_covered"], *book["book_pt"], book["labral_tear"]]

    def _satisfying(self, cond: Mapping[str, Any]) -> Any:
        """A value of the condition's fact that makes it true (None: none found)."""
        for candidate in self._candidates.get(cond["fact"], ()):
            if _test(cond["op"], candidate, cond.get("value")):
                return candidate
        return None

    def _possible(self, rule: Mapping[str, Any], case: Mapping[str, Any]) -> bool:
        """False once what is known already rules the rule out."""
        if any(condition(c, case) is False for c in rule.get("all", ())):
            return False
        if any(condition(c, case) is True for c in rule.get("none", ())):
            return False
        results = [condition(c, case) for c in rule.get("any", ())]
        return not (results and all(r is False for r in results))

    def worth_asking(self, case: Mapping[str, Any]) -> list[str]:
        """Unknown fields an answer to which could change the decision, given what is known.

        The decision: the urgency, the pattern and whether to book a physio (from the rules).

        A field counts when changing it alone changes that decision, or when it belongs
        to a rule that is still possible and, once its unknown facts are answered so that
        it applies, would change it (a pattern that needs two answers, such as tight and
        unstable hips after birth, gets both questions).
        """
        baseline = self._decision(self.core(case))
        found: set[str] = set()
        for field in FIELDS:
            if case.get(field) is not None:
                continue
            for candidate in self._candidates[field]:
                if self._decision(self.core(dict(case, **{field: candidate}))) != baseline:
                    found.add(field)
                    break
        for rule in self._rules():
            if match(rule, case)[0] or not self._possible(rule, case):
                continue
            witness = dict(case)
            unknown = []
            for cond in [*rule.get("all", ()), *rule.get("any", ())[:1]]:
                fact = cond["fact"]
                if fact in FIELDS and witness.get(fact) is None:
                    value = self._satisfying(cond)
                    if value is not None:
                        witness[fact] = value
                        unknown.append(fact)
            if unknown and self._decision(self.core(witness)) != baseline:
                found.update(unknown)
        return [field for field in FIELDS if field in found]

    # -- texts and sources

    def cite(self, item: Mapping[str, Any]) -> list[str]:
        """Source strings for one cited item (its own citation and any 'also')."""
        result = []
        for cite in [item, *item.get("also", ())]:
            source = self.sources[cite["source"]]
            if source["kind"] == "document":
                name = f"{source['file']}: {source['title']} ({source['publisher']})"
            else:
                name = f"{source['publisher']}: {source['title']}"
            result.append(f"{name}, '{cite['section']}'")
        return result

    def _explanation_key(self, case: Mapping[str, Any], pattern: str) -> str:
        """The key of the explanation for her outcome.

        Her pattern's own, else the pregnancy guide's in pregnancy, else the postpartum
        guide's muscle imbalance; `unclear` when no pattern fits.
        """
        explanations = self.book["explanation"]
        if pattern == UNCLEAR:
            return "unclear"
        if pattern in explanations:
            return pattern
        if case.get("stage") == "pregnant" and "pregnancy" in explanations:
            return "pregnancy"
        return "default"

    @staticmethod
    def _advice_applies(item: Mapping[str, Any], case: Mapping[str, Any], has_pattern: bool):
        stage = case.get("stage")
        if stage is not None and stage not in item.get("stages", (stage,)):
            return False
        if item["show"] == "running":
            return "running" in (case.get("triggers") or ())
        return item["show"] == "always" or has_pattern

    def triage(self, case: Mapping[str, Any]) -> dict[str, Any]:
        """Builds the full outcome (contract keys plus a few extras) for a normalized case."""
        core = self.core(case)
        book = self.book
        cited: list[Mapping[str, Any]] = [self.red_flags[f] for f in core["red_flags"]]
        cited += [self.pattern_by_id[p] for p in core["patterns"]]
        fired = set(core["fired"])
        for kind in ("not_covered", "book_pt"):
            cited += [r for r in book[kind] if f"{kind}/{r['id']}" in fired]
        if core["labral_tear_note"]:
            cited.append(book["labral_tear"])
        if core["pattern"] == UNCLEAR:
            cited.append(book["unclear_pattern"])

        has_pattern = core["pattern"] != UNCLEAR
        explanation = book["explanation"][self._explanation_key(case, core["pattern"])]
        cited.append(explanation)
        advice = [a for a in book["advice"] if self._advice_applies(a, case, has_pattern)]
        cited += advice

        sources: list[str] = []
        for item in cited:
            for text in self.cite(item):
                if text not in sources:
                    sources.append(text)

        top = next((u for u in RED_FLAG_URGENCIES if u == core["urgency"]), None)
        pattern_rule = self.pattern_by_id.get(core["pattern"])
        description = (pattern_rule or book["unclear_pattern"])["description"].strip()
        if pattern_rule and pattern_rule.get("in_pregnancy") and case.get("stage") == "pregnant":
            description += " " + pattern_rule["in_pregnancy"].strip()
        return {
            "urgency": core["urgency"],
            "red_flags": list(core["red_flags"]),
            "pattern": core["pattern"],
            "patterns": list(core["patterns"]),
            "book_pt": core["book_pt"],
            "book_pt_reasons": list(core["book_pt_reasons"]),
            "labral_tear_note": core["labral_tear_note"],
            "explanation": explanation["text"].strip(),
            "advice": [a["text"].strip() for a in advice],
            "sources": sources,
            "missing": self.missing(case, core),
            # Extras (not in the contract): for the chat and for reviewers.
            "urgent_advice": book["urgent_advice"][top]["text"].strip() if top else None,
            "red_flag_lines": [self.red_flags[f]["line"].strip() for f in core["red_flags"]],
            "pattern_name": pattern_rule["name"].strip() if pattern_rule else None,
            "pattern_description": description,
            "pattern_reason": pattern_rule["reason"].strip() if pattern_rule else None,
            "labral_tear_text": (
                book["labral_tear"]["text"].strip() if core["labral_tear_note"] else None
            ),
            "fired_rules": list(core["fired"]),
        }
