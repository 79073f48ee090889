"""Hip pain triage engine: a case in, an outcome out (see the triage contract).

A top-level package used by both servers (the NLU component in the Rasa server,
the actions in the action server) and by clinicians (``python -m triage CASE``,
also ``python -m actions.triage CASE``, the contract's name for it). Modules:
``contract`` (case fields, values, limits, validation), ``rulebook`` (schema and
loader of ``rulebook.yml``), ``engine`` (evaluation), ``cli``, ``report``.

Public API, used by the chat and the NLU component:

- :func:`triage` validates a case and returns the outcome dict.
- :func:`validate_case` / :class:`CaseError` check a case.
- :data:`FIELDS` describes the case fields.
- :func:`red_flag_urgency` gives a red flag's urgency.
- :func:`rulebook` returns the checked rulebook, for its texts.

Nothing is loaded at import time, and nothing here imports Rasa: the rulebook
is read on first use and cached.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from .contract import FIELDS, RED_FLAGS, CaseError, validate_case

__all__ = [
    "FIELDS",
    "CaseError",
    "red_flag_applies",
    "red_flag_urgency",
    "rulebook",
    "triage",
    "validate_case",
    "worth_asking",
]


@lru_cache(maxsize=1)
def _engine() -> Any:
    from .engine import Engine
    from .loader import load_rulebook

    return Engine(load_rulebook())


def rulebook() -> dict[str, Any]:
    """Returns the loaded and checked rulebook (cached; treat it as read-only).

    Raises:
        loader.RulebookError: if the packaged rulebook is broken.
    """
    return _engine().book


def red_flag_urgency(flag: str) -> str:
    """Returns ``"emergency"`` or ``"urgent"`` for a red flag of the contract.

    Raises:
        CaseError: if ``flag`` is not a red flag of the contract.
    """
    if flag not in RED_FLAGS:
        raise CaseError("red_flags", "one of " + ", ".join(RED_FLAGS), flag, "unknown value")
    return _engine().red_flags[flag]["urgency"]


def red_flag_applies(flag: str, stage: str | None, weeks: Any) -> bool | None:
    """Whether a red flag can apply at her stage: True, False, or None (stage unknown).

    A sign that only applies in pregnancy (the rulebook's `stages`) does not apply after
    the birth, nor from its `before_weeks` on (contractions or fluid at 37 weeks).
    """
    rule = _engine().red_flags[flag]
    stages = rule.get("stages")
    if not stages:
        return True
    if stage is None:
        return None
    if stage not in stages:
        return False
    before = rule.get("before_weeks")
    return not (before is not None and isinstance(weeks, (int, float)) and weeks >= before)


def worth_asking(case: Mapping[str, Any]) -> list[str]:
    """The unknown fields whose answer could change the urgency, pattern or book-a-PT.

    Raises:
        CaseError: if the case is not valid.
    """
    return _engine().worth_asking(validate_case(case))


def triage(case: Mapping[str, Any]) -> dict[str, Any]:
    """Validates a case and returns its outcome.

    Args:
        case: a mapping of case fields (all optional; ``None`` means unknown).

    Returns:
        A dict with the contract's keys (urgency, red_flags, pattern, patterns,
        book_pt, book_pt_reasons, labral_tear_note, explanation, advice,
        sources, missing) and some extras: urgent_advice (text with
        placeholders, or None), red_flag_lines, pattern_name (None when
        unclear), pattern_description (also when unclear), labral_tear_text
        (or None) and fired_rules (``section/id`` of every rule applied).

    Raises:
        CaseError: if the case is not valid.
    """
    return _engine().triage(validate_case(case))
