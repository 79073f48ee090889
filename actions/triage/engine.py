"""A small rule evaluator: the rulebook's facts in, the triage outcome out.

The knowledge lives in ``rulebook.yml``; this module only checks it and
applies it. Conditions are ``{fact, op, value}`` mappings grouped as ``all``
(every one must be true), ``any`` (supporting: at least one true, or all of
their facts unknown; the number true is the score) and ``none`` (any true
excludes). A fact that is unknown (``None``) makes its condition neither true
nor false.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .case import FIELDS, PATTERN_IDS, RED_FLAGS, UNCLEAR

URGENCY_ORDER = ("emergency", "urgent", "book_pt", "self_care")
RED_FLAG_URGENCIES = ("emergency", "urgent")
OUTCOME_KEYS = (
    "urgency",
    "red_flags",
    "pattern",
    "patterns",
    "book_pt",
    "book_pt_reasons",
    "labral_tear_note",
    "explanation",
    "advice",
    "sources",
    "missing",
)
"""The contract's outcome keys, in contract order."""

OPERATORS = (
    "eq",
    "ne",
    "in",
    "contains",
    "contains_any",
    "contains_only",
    "gte",
    "lte",
    "is_true",
    "is_false",
)

# Which operators suit which kind of fact, and what their value must be.
_OPS_BY_KIND = {
    "enum": {"eq": "one", "ne": "one", "in": "many"},
    "list": {"contains": "one", "contains_any": "many", "contains_only": "many"},
    "bool": {"is_true": None, "is_false": None},
    "int": {"eq": "number", "ne": "number", "gte": "number", "lte": "number"},
    "number": {"eq": "number", "ne": "number", "gte": "number", "lte": "number"},
}

DERIVED_FACTS: dict[str, dict[str, Any]] = {
    "pattern_match": {"kind": "enum", "values": (*PATTERN_IDS, UNCLEAR)},
    "pattern": {"kind": "enum", "values": (*PATTERN_IDS, UNCLEAR)},
    "not_covered": {"kind": "bool"},
}
"""Facts the engine works out: the best pattern before (``pattern_match``) and
after (``pattern``) the not-covered rules, and whether a not-covered rule fired."""

_CASE_FACTS = frozenset(FIELDS)
_FACTS_FOR = {
    "patterns": _CASE_FACTS,
    "not_covered": _CASE_FACTS | {"pattern_match"},
    "book_pt": _CASE_FACTS | {"pattern", "pattern_match", "not_covered"},
    "labral_tear": _CASE_FACTS,
}

_CITE_KEYS = {"source", "section", "passage", "also", "note"}
_RULE_KEYS = {
    "patterns": {"id", "name", "description", "reason", "priority", "all", "any", "none"},
    "not_covered": {"id", "reason", "effect", "all", "none"},
    "book_pt": {"id", "reason", "all", "none"},
    "labral_tear": {"id", "text", "all", "none"},
    "red_flags": {"id", "urgency", "meaning", "line"},
}
_TEXT_KEYS = {
    "patterns": ("name", "description", "reason"),
    "not_covered": ("reason",),
    "book_pt": ("reason",),
    "labral_tear": ("text",),
    "red_flags": ("meaning", "line"),
}
_TOP_KEYS = (
    "version",
    "about",
    "sources",
    "red_flags",
    "urgent_advice",
    "patterns",
    "unclear_pattern",
    "not_covered",
    "book_pt",
    "labral_tear",
    "explanation",
    "advice",
    "followups",
)
FOLLOWUP_IDS = ("why", "what_helps", "how_long", "running", "labral_tear", "booking")
ADVICE_SHOW = ("always", "pattern")

RULEBOOK_PATH = Path(__file__).with_name("rulebook.yml")


class RulebookError(ValueError):
    """The rulebook is broken; the message names the rule and the problem."""


# --------------------------------------------------------------------------
# Loading and checking


def read_yaml(text: str) -> Any:
    """Parses YAML (or JSON) text with the fastest safe loader available."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)


def load_rulebook(path: str | Path | None = None) -> dict[str, Any]:
    """Reads and checks a rulebook file (default: the packaged ``rulebook.yml``).

    Raises:
        RulebookError: if the file cannot be read or parsed, or fails a check.
    """
    path = Path(path) if path is not None else RULEBOOK_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulebookError(f"rulebook {path}: cannot read it ({exc.strerror})") from None
    import yaml

    try:
        data = read_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise RulebookError(f"rulebook {path}: not valid YAML{where}") from None
    return check_rulebook(data)


def _fail(where: str, message: str) -> RulebookError:
    return RulebookError(f"rulebook: {where}: {message}")


def _text(where: str, item: Mapping, key: str) -> None:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"'{key}' must be a non-empty text")


def _check_cite(where: str, item: Any, sources: Mapping[str, Any], extra: set[str]) -> None:
    if not isinstance(item, Mapping):
        raise _fail(where, "must be a mapping")
    unknown = set(item) - _CITE_KEYS - extra
    if unknown:
        raise _fail(where, f"unknown key(s): {', '.join(sorted(map(str, unknown)))}")
    source = item.get("source")
    if source not in sources:
        raise _fail(where, f"cites undeclared source {source!r}")
    _text(where, item, "section")
    _text(where, item, "passage")
    also = item.get("also", [])
    if not isinstance(also, list):
        raise _fail(where, "'also' must be a list of citations")
    for number, cite in enumerate(also, 1):
        _check_cite(f"{where} (also #{number})", cite, sources, set())


def _check_value(where: str, fact: str, spec: Mapping, op: str, value: Any) -> None:
    shape = _OPS_BY_KIND[spec["kind"]][op]
    if shape is None:
        return
    if shape == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(where, f"{fact} {op} needs a number, got {value!r}")
        return
    values = [value] if shape == "one" else value
    if shape == "many" and (not isinstance(value, list) or not value):
        raise _fail(where, f"{fact} {op} needs a non-empty list of values, got {value!r}")
    for item in values:
        if item not in spec["values"]:
            raise _fail(
                where,
                f"unknown value {item!r} for {fact} (expected one of {', '.join(spec['values'])})",
            )


def _check_conditions(where: str, rule: Mapping, kind: str) -> None:
    groups = ("all", "none") if kind != "patterns" else ("all", "any", "none")
    if kind != "patterns" and "any" in rule:
        raise _fail(where, "'any' is only for patterns; use 'all' and 'none'")
    allowed = _FACTS_FOR[kind]
    for group in groups:
        conditions = rule.get(group, [])
        if not isinstance(conditions, list):
            raise _fail(where, f"'{group}' must be a list of conditions")
        for number, cond in enumerate(conditions, 1):
            here = f"{where}: {group} #{number}"
            if not isinstance(cond, Mapping):
                raise _fail(here, "a condition must be a mapping {fact, op, value}")
            fact, op = cond.get("fact"), cond.get("op")
            if fact not in FIELDS and fact not in DERIVED_FACTS:
                raise _fail(here, f"unknown fact {fact!r}")
            if fact not in allowed:
                raise _fail(here, f"fact {fact!r} cannot be used in {kind}")
            if op not in OPERATORS:
                raise _fail(here, f"unknown operator {op!r}")
            spec = FIELDS.get(fact) or DERIVED_FACTS[fact]
            if op not in _OPS_BY_KIND[spec["kind"]]:
                raise _fail(here, f"operator {op!r} does not suit {spec['kind']} fact {fact!r}")
            has_value = _OPS_BY_KIND[spec["kind"]][op] is not None
            expected_keys = {"fact", "op", "value"} if has_value else {"fact", "op"}
            if set(cond) != expected_keys:
                raise _fail(here, f"keys must be exactly {', '.join(sorted(expected_keys))}")
            _check_value(here, fact, spec, op, cond.get("value"))
    if not rule.get("all") and kind != "patterns":
        raise _fail(where, "needs at least one 'all' condition")


def _check_rules(data: Mapping, kind: str, sources: Mapping, ids: Iterable[str] | None) -> None:
    rules = data.get(kind)
    if not isinstance(rules, list) or not rules:
        raise _fail(kind, "must be a non-empty list of rules")
    seen: set[str] = set()
    for number, rule in enumerate(rules, 1):
        if not isinstance(rule, Mapping) or not isinstance(rule.get("id"), str):
            raise _fail(f"{kind} #{number}", "each rule needs a mapping with an 'id'")
        where = f"{kind}/{rule['id']}"
        if rule["id"] in seen:
            raise _fail(where, "duplicate id")
        seen.add(rule["id"])
        if ids is not None and rule["id"] not in ids:
            raise _fail(where, f"unknown id (expected one of {', '.join(ids)})")
        _check_cite(where, rule, sources, _RULE_KEYS[kind])
        for key in _TEXT_KEYS[kind]:
            _text(where, rule, key)
        if kind == "red_flags":
            if rule.get("urgency") not in RED_FLAG_URGENCIES:
                raise _fail(where, "urgency must be emergency or urgent")
            continue
        if kind == "patterns":
            priority = rule.get("priority", 0)
            if isinstance(priority, bool) or not isinstance(priority, int):
                raise _fail(where, "priority must be an integer")
        if kind == "not_covered" and rule.get("effect") != "unclear":
            raise _fail(where, "effect must be 'unclear'")
        _check_conditions(where, rule, kind)
    if ids is not None and seen != set(ids):
        raise _fail(kind, f"missing rule(s): {', '.join(i for i in ids if i not in seen)}")


def _check_texts(where: str, items: Any, sources: Mapping, required: Iterable[str]) -> None:
    if not isinstance(items, Mapping):
        raise _fail(where, "must be a mapping")
    for key in required:
        if key not in items:
            raise _fail(where, f"missing '{key}'")
    for key, item in items.items():
        if key not in required:
            raise _fail(f"{where}/{key}", "unknown entry")
        _check_cite(f"{where}/{key}", item, sources, {"text"})
        _text(f"{where}/{key}", item, "text")


def check_rulebook(data: Any) -> dict[str, Any]:
    """Checks a parsed rulebook and returns it.

    Raises:
        RulebookError: naming the rule, on an unknown fact, operator, enum value
            or key, a citation of an undeclared source, or a missing part.
    """
    if not isinstance(data, dict):
        raise RulebookError("rulebook: must be a mapping")
    for key in data:
        if key not in _TOP_KEYS:
            raise _fail(str(key), "unknown top-level key")
    for key in _TOP_KEYS[2:]:
        if key not in data:
            raise _fail(key, "missing")

    sources: dict[str, Any] = {}
    if not isinstance(data["sources"], list):
        raise _fail("sources", "must be a list")
    for number, source in enumerate(data["sources"], 1):
        if not isinstance(source, Mapping) or not isinstance(source.get("id"), str):
            raise _fail(f"sources #{number}", "needs an 'id'")
        where = f"sources/{source['id']}"
        if source["id"] in sources:
            raise _fail(where, "duplicate id")
        for key in ("title", "publisher"):
            _text(where, source, key)
        if source.get("kind") not in ("document", "guidance"):
            raise _fail(where, "kind must be document or guidance")
        if source["kind"] == "document":
            _text(where, source, "file")
        sources[source["id"]] = source

    _check_rules(data, "red_flags", sources, RED_FLAGS)
    _check_rules(data, "patterns", sources, PATTERN_IDS)
    unclear = data["unclear_pattern"]
    _check_cite("unclear_pattern", unclear, sources, {"description"})
    _text("unclear_pattern", unclear, "description")
    _check_rules(data, "not_covered", sources, None)
    _check_rules(data, "book_pt", sources, None)
    labral = data["labral_tear"]
    if not isinstance(labral, Mapping):
        raise _fail("labral_tear", "must be a mapping")
    _check_rules({"labral_tear": [labral]}, "labral_tear", sources, None)
    _check_texts("urgent_advice", data["urgent_advice"], sources, RED_FLAG_URGENCIES)
    _check_texts("explanation", data["explanation"], sources, ("default", "unclear"))
    _check_texts("followups", data["followups"], sources, FOLLOWUP_IDS)

    advice = data["advice"]
    if not isinstance(advice, list) or not advice:
        raise _fail("advice", "must be a non-empty list")
    for number, item in enumerate(advice, 1):
        name = item.get("id", f"#{number}") if isinstance(item, Mapping) else f"#{number}"
        _check_cite(f"advice/{name}", item, sources, {"id", "text", "show"})
        _text(f"advice/{name}", item, "text")
        if item.get("show") not in ADVICE_SHOW:
            raise _fail(f"advice/{name}", "show must be 'always' or 'pattern'")
    return data


# --------------------------------------------------------------------------
# Evaluating


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
        explanation = book["explanation"]["default" if has_pattern else "unclear"]
        cited.append(explanation)
        advice = [a for a in book["advice"] if a["show"] == "always" or has_pattern]
        cited += advice

        sources: list[str] = []
        for item in cited:
            for text in self.cite(item):
                if text not in sources:
                    sources.append(text)

        top = next((u for u in RED_FLAG_URGENCIES if u == core["urgency"]), None)
        pattern_rule = self.pattern_by_id.get(core["pattern"])
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
            "pattern_description": (pattern_rule or book["unclear_pattern"])["description"].strip(),
            "labral_tear_text": (
                book["labral_tear"]["text"].strip() if core["labral_tear_note"] else None
            ),
            "fired_rules": list(core["fired"]),
        }
