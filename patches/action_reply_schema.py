"""The action server's replies checked with a schema compiled once.

Patches `RemoteAction._validate_action_result` (checked against Rasa 3.6.21).

Rasa 3.6 checks every reply of the action server with ``jsonschema.validate(reply,
schema)``, which first re-checks the constant events schema against the JSON Schema
meta-schema, on every call. The benchmark profile put 63% of a turn's CPU there
(bench/results, docs/benchmarks.md). This swaps that check for one with the same
validator class, the same ``best_match`` error and the same message, built once.
Replies are still checked.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict

from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema.validators import validator_for

    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_action_result(self: RemoteAction, result: Dict[str, Any]) -> bool:
    """Same contract as ``RemoteAction._validate_action_result``, schema built once.

    Raises:
        jsonschema.ValidationError: the reply does not match the events schema.
    """
    from jsonschema.exceptions import best_match

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
