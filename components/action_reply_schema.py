"""Rasa component: check the action server's replies with a schema compiled once.

Rasa 3.6 checks every reply of the action server with ``jsonschema.validate(reply,
schema)``, which first re-checks the constant events schema against the JSON Schema
meta-schema, on every call. The benchmark profile put 63% of a turn's CPU there
(bench/results, docs/benchmarks.md). When the model loads, this no-op pipeline
component swaps that check for one with the same validator class, the same
``best_match`` error and the same message, built once. Replies are still checked.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, List

from rasa.core.actions.action import RemoteAction
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.constants import DOCS_BASE_URL
from rasa.shared.nlu.training_data.message import Message


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


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class ActionReplySchemaOnce(GraphComponent):
    """No-op NLU component whose creation installs the compiled reply check."""

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ActionReplySchemaOnce:
        """Installs the compiled check when the model is loaded."""
        install()
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        """Leaves messages alone."""
        return messages
