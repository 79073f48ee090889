"""The action server's replies checked with a schema compiled once, by event type.

Patches `RemoteAction._validate_action_result` (checked against Rasa 3.6.21).

Rasa 3.6 checks every reply of the action server with ``jsonschema.validate(reply,
schema)``, which first re-checks the constant events schema against the JSON Schema
meta-schema, on every call. The benchmark profile put 63% of a turn's CPU there
(bench/results, docs/benchmarks.md). This swaps that check for one with the same
validator class, the same ``best_match`` error and the same message, built once.

Then (issue 16, 17% of a turn's CPU was still there): each event must match exactly
one of 23 alternatives (``oneOf``), each fixing the ``event`` name with a ``const``,
so every event was checked against all 23. An alternative with another name can
never match, so "exactly one of the 23" is "exactly one of those with its name":
the reply is checked against the schema without the ``oneOf``, and each event against
the ``oneOf`` of the alternatives for its name only. The same replies pass; any reply
that does not is checked again with the whole schema, for Rasa's own error.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any, Dict, Tuple

from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema.validators import validator_for

    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


@lru_cache(maxsize=1)
def _by_event() -> Tuple[Any, Dict[str, Any]]:
    """The schema without the events' ``oneOf``, and one ``oneOf`` per event name."""
    full = _validator()
    schema = copy.deepcopy(full.schema)
    items = schema["properties"]["events"]["items"]
    alternatives = items.pop("oneOf")
    per_name: Dict[str, list] = {}
    for alternative in alternatives:
        name = alternative["properties"]["event"]["const"]
        per_name.setdefault(name, []).append(alternative)
    cls = type(full)
    return cls(schema), {name: cls({"oneOf": alts}) for name, alts in per_name.items()}


def is_valid_reply(result: Any) -> bool:
    """Whether the whole schema accepts `result`, checking each event by its name."""
    base, per_name = _by_event()
    if not base.is_valid(result):
        return False
    for event in (result.get("events") or []) if isinstance(result, dict) else []:
        check = per_name.get(event.get("event"))
        if check is None or not check.is_valid(event):
            return False
    return True


def validate_action_result(self: RemoteAction, result: Dict[str, Any]) -> bool:
    """Same contract as ``RemoteAction._validate_action_result``, schema built once.

    Raises:
        jsonschema.ValidationError: the reply does not match the events schema.
    """
    from jsonschema.exceptions import best_match

    if is_valid_reply(result):
        return True
    error = best_match(_validator().iter_errors(result))
    if error is None:
        return True
    error.message += (
        ". Failed to validate Action server response from API, "
        "make sure your response from the Action endpoint is valid. "
        f"For more information about the format visit {DOCS_BASE_URL}/custom-actions"
    )
    raise error


def install() -> None:
    """Swaps Rasa's per-call schema check for the compiled one (idempotent)."""
    RemoteAction._validate_action_result = validate_action_result  # type: ignore[method-assign]
