"""Measurement aid for bench/variants: Rasa's action-reply check with its schema compiled once.

Rasa 3.6 checks every reply of the action server with ``jsonschema.validate(reply,
schema)``, which first re-checks the (constant) events schema against the JSON
Schema meta-schema, on every call; the profile puts most of a turn's CPU there.
Importing this module (the server does, when a model lists the no-op component
below) swaps that check for one with the same validator class, the same
``best_match`` error and the same message, built once. Replies are still checked.

This file only lets the benchmark measure what the change buys; the project's own
home for it would be a module the server imports anyway (a custom component or
channel), not bench/.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Dict, List

from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.constants import DOCS_BASE_URL
from rasa.shared.nlu.training_data.message import Message


@lru_cache(maxsize=1)
def _validator() -> Any:
    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _validate_action_result(self: RemoteAction, result: Dict[str, Any]) -> bool:
    error = best_match(_validator().iter_errors(result))
    if error is None:
        return True
    error.message += (
        f". Failed to validate Action server response from API, "
        f"make sure your response from the Action endpoint is valid. "
        f"For more information about the format visit "
        f"{DOCS_BASE_URL}/custom-actions"
    )
    raise error


RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class CompiledActionReplySchema(GraphComponent):
    """No-op pipeline component: listing it makes the server import this module."""

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> CompiledActionReplySchema:
        """Creates the component."""
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        """Leaves messages alone."""
        return messages
