"""The one place our patches of Rasa internals are installed (see patches/__init__.py).

A no-op pipeline component: when Rasa creates or loads it (training, and every process
that loads the model: ``rasa run``, ``rasa shell``, ``rasa test``), it calls
:func:`patches.install`. Its only option, ``disable``, lists patches to leave out (the
benchmark's variants use it to measure one patch).
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.training_data.message import Message

import patches


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class RasaPatches(GraphComponent):
    """No-op NLU component whose creation installs the documented Rasa patches."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """Returns the default config: no patch disabled."""
        return {"disable": []}

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> RasaPatches:
        """Installs the patches when the model is built or loaded."""
        patches.install(config.get("disable") or ())
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        """Leaves messages alone."""
        return messages
