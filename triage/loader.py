"""The rulebook's schema and loader: reads ``rulebook.yml`` and checks it loudly.

Every rule names facts (case fields of the contract, or the few facts the engine
derives), operators that suit each fact's kind, values from the contract, and a
citation of a declared source. Anything else (an unknown fact, operator, value or
key, a missing part) is a :class:`RulebookError` naming the rule. Evaluation lives
in :mod:`triage.engine`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .contract import FIELDS, PATTERN_IDS, RED_FLAG_URGENCIES, RED_FLAGS, STAGES, UNCLEAR

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
    "patterns": {
        "id",
        "name",
        "description",
        "in_pregnancy",
        "reason",
        "priority",
        "all",
        "any",
        "none",
    },
    "not_covered": {"id", "reason", "effect", "all", "none"},
    "book_pt": {"id", "reason", "all", "none"},
    "labral_tear": {"id", "text", "all", "none"},
    "red_flags": {
        "id",
        "urgency",
        "meaning",
        "line",
        "confirm",
        "not",
        "stages",
        "before_weeks",
    },
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
    "safety_screen",
    "patterns",
    "unclear_pattern",
    "not_covered",
    "book_pt",
    "labral_tear",
    "explanation",
    "advice",
    "followups",
)
SCREEN_STAGES = ("pregnant", "postpartum", "unknown")
MAX_PAYLOAD_BYTES = 64  # Telegram's limit for a button's callback data
FOLLOWUP_IDS = ("why", "what_helps", "how_long", "running", "labral_tear", "booking", "surgery")
ADVICE_SHOW = ("always", "pattern", "running")
# Explanations: `default` and `unclear` always; a pattern's own, and the pregnancy one
# (the pregnancy source's cause), when the rulebook has them.
EXPLANATION_KEYS = ("default", "unclear")
EXPLANATION_OPTIONAL = ("pregnancy", *PATTERN_IDS)

RULEBOOK_PATH = Path(__file__).with_name("rulebook.yml")


class RulebookError(ValueError):
    """The rulebook is broken; the message names the rule and the problem."""


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
            _check_red_flag_reading(where, rule, sources)
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


def _check_texts(
    where: str, items: Any, sources: Mapping, required: Iterable[str], optional: Iterable[str] = ()
) -> None:
    if not isinstance(items, Mapping):
        raise _fail(where, "must be a mapping")
    for key in required:
        if key not in items:
            raise _fail(where, f"missing '{key}'")
    for key, item in items.items():
        if key not in required and key not in optional:
            raise _fail(f"{where}/{key}", "unknown entry")
        _check_cite(f"{where}/{key}", item, sources, {"text"})
        _text(f"{where}/{key}", item, "text")


def _check_red_flag_reading(where: str, rule: Mapping, sources: Mapping) -> None:
    """A red flag's stages, confirming question (by stage) and what it does NOT include."""
    stages = rule.get("stages", list(STAGES))
    if not isinstance(stages, list) or not stages or set(stages) - set(STAGES):
        raise _fail(where, f"'stages' must list some of {', '.join(STAGES)}")
    before = rule.get("before_weeks")
    if before is not None and (isinstance(before, bool) or not isinstance(before, int)):
        raise _fail(where, "'before_weeks' must be a whole number of weeks pregnant")
    confirm = rule.get("confirm")
    if not isinstance(confirm, Mapping) or "said" not in confirm:
        raise _fail(where, "'confirm' needs 'said' and the question ('all' or by stage)")
    _text(f"{where}/confirm", confirm, "said")
    stages = set(confirm) - {"said"}
    if stages != {"all"} and not stages <= set(SCREEN_STAGES):
        raise _fail(
            where, f"'confirm' questions are 'all' or by stage ({', '.join(SCREEN_STAGES)})"
        )
    if "all" not in stages and not {"pregnant", "unknown"} <= stages:
        raise _fail(where, "'confirm' needs at least the pregnant and unknown-stage questions")
    for stage in stages:
        _text(f"{where}/confirm", confirm, stage)
    exclusions = rule.get("not")
    if not isinstance(exclusions, list) or not exclusions:
        raise _fail(where, "'not' must list what this red flag does not include, with sources")
    for number, item in enumerate(exclusions, 1):
        _check_cite(f"{where}/not #{number}", item, sources, {"text"})
        _text(f"{where}/not #{number}", item, "text")


def _check_screen(screen: Any) -> None:
    """The safety screen: its two questions and its signs, each standing for red flags."""
    if not isinstance(screen, Mapping) or set(screen) != {"question", "picker", "signs"}:
        raise _fail("safety_screen", "needs exactly 'question', 'picker' and 'signs'")
    _text("safety_screen", screen, "question")
    _text("safety_screen", screen, "picker")
    signs = screen["signs"]
    if not isinstance(signs, list) or not signs:
        raise _fail("safety_screen", "'signs' must be a non-empty list")
    seen: set[str] = set()
    for number, sign in enumerate(signs, 1):
        if not isinstance(sign, Mapping) or not isinstance(sign.get("id"), str):
            raise _fail(f"safety_screen #{number}", "each sign needs a mapping with an 'id'")
        where = f"safety_screen/{sign['id']}"
        if sign["id"] in seen:
            raise _fail(where, "duplicate id")
        seen.add(sign["id"])
        if set(sign) != {"id", "flags", "text", "button"}:
            raise _fail(where, "keys must be exactly id, flags, text, button")
        flags = sign["flags"]
        if not isinstance(flags, list) or not flags or any(f not in RED_FLAGS for f in flags):
            raise _fail(where, f"'flags' must be red flags of the contract, got {flags!r}")
        texts = sign["text"]
        if not isinstance(texts, Mapping) or not texts or set(texts) - set(SCREEN_STAGES):
            raise _fail(where, f"'text' maps some of {', '.join(SCREEN_STAGES)} to words")
        for stage in texts:
            _text(where, texts, stage)
        button = sign["button"]
        if not isinstance(button, Mapping) or set(button) != {"title", "payload"}:
            raise _fail(where, "'button' needs a title and a payload")
        _text(where, button, "title")
        _text(where, button, "payload")
        if len(button["payload"].encode()) > MAX_PAYLOAD_BYTES:
            raise _fail(where, f"the payload is over {MAX_PAYLOAD_BYTES} bytes")
    for stage in SCREEN_STAGES:
        if not any(stage in sign["text"] for sign in signs):
            raise _fail("safety_screen", f"no sign is shown when the stage is {stage}")


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
    _check_screen(data["safety_screen"])
    _check_texts(
        "explanation", data["explanation"], sources, EXPLANATION_KEYS, EXPLANATION_OPTIONAL
    )
    _check_texts("followups", data["followups"], sources, FOLLOWUP_IDS)

    advice = data["advice"]
    if not isinstance(advice, list) or not advice:
        raise _fail("advice", "must be a non-empty list")
    for number, item in enumerate(advice, 1):
        name = item.get("id", f"#{number}") if isinstance(item, Mapping) else f"#{number}"
        _check_cite(f"advice/{name}", item, sources, {"id", "text", "show", "stages"})
        _text(f"advice/{name}", item, "text")
        if item.get("show") not in ADVICE_SHOW:
            raise _fail(f"advice/{name}", f"show must be one of {', '.join(ADVICE_SHOW)}")
        stages = item.get("stages", list(STAGES))
        if not isinstance(stages, list) or not stages or set(stages) - set(STAGES):
            raise _fail(f"advice/{name}", f"'stages' must list some of {', '.join(STAGES)}")
    return data
