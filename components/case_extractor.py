"""Rasa NLU component: our rule-based spaCy pipeline as an entity extractor.

At train time it builds a blank-English spaCy pipeline from the pattern files in
`components/patterns/` and stores it in the model; at run time it loads that
pipeline and adds one entity per case field it finds (named like the triage
contract's case fields). When a red flag is found, the intent is replaced by
`red_flag_emergency` or `red_flag_urgent`, so rules can give the urgent advice
from domain responses even when the action server is down; a clear sign that only
applies in pregnancy, in a message that does not say whether she is pregnant, gives
`red_flag_pregnancy`, and a possible mention (components/red_flag_reading.py)
`red_flag_possible`: the interview then asks, or decides from her stage. A red-flag intent
guessed by the classifier with no red flag found in the text is demoted: the
rule-based extractor, not the classifier, decides what is a red flag. A fallback
intent on a message that carries case fields becomes `inform`. An intent that wipes or
ends the conversation (restart, stop, delete_data) stands only when the message is
such a command ("start again", "delete my data"), never when it tells about her pain
("the pain started again", "it stops me sleeping"): then the best other intent.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any, Dict, List

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components import extractor, red_flag_signal

logger = logging.getLogger(__name__)

RED_FLAG_INTENTS = {"emergency": "red_flag_emergency", "urgent": "red_flag_urgent"}
# A clear sign that only applies in pregnancy, the stage not said; a possible mention.
PREGNANCY_INTENT, POSSIBLE_INTENT = "red_flag_pregnancy", "red_flag_possible"
NON_CASE_ENTITIES = frozenset(
    {
        "number",
        "duration",
        "pregnancy_red_flags",
        "possible_red_flags",
        "question_topic",
        "pain_since",
    }
)
# Intents a side question is often mistaken for.
ANSWER_LIKE = frozenset(
    {"correct", "inform", "describe_pain", "nlu_fallback", "deny", "affirm", "out_of_scope"}
)
PIPELINE_DIR = "spacy_pipeline"
# What a command to wipe or end the conversation says (the base verb: "start", not
# "started"); a message without one, or about her body, is not that command.
COMMAND_CUES = {
    "restart": re.compile(
        r"\b(re-?start|reset|re-?do|(start|begin)( \w+){0,3} (over|again|afresh|new)"
        r"|(start|begin)( \w+)? (from|at) (the )?(beginning|scratch|top|start)"
        r"|from (the )?(top|scratch|beginning)|new (assessment|one|chat|conversation)"
        r"|try( it)? again)\b"
    ),
    "stop": re.compile(
        r"\b(stop|cancel|quit|exit|abort|enough|end (this|the \w+|it|now)|never ?mind"
        r"|i'?m done|give up|no more (questions|of this)"
        r"|(do not|don'?t) want to (continue|go on))\b"
    ),
    "delete_data": re.compile(
        r"\b(delete[ds]?|erased?|forget|removed?|wiped?|clear|get rid of|gdpr"
        r"|(do not|don'?t)( \w+){0,3} (keep|store|save))\b"
    ),
}
CONTROL_INTENTS = frozenset(COMMAND_CUES)
FALLBACK_THRESHOLD = 0.4  # = config.yml's FallbackClassifier threshold
NOT_A_COMMAND = re.compile(
    r"\b(pain\w*|hurt\w*|ache\w*|aching|sore\w*|twinge\w*|throb\w*|stab\w*|burn\w*"
    r"|numb\w*|tingl\w*|bleed\w*|swell\w*|swollen|cramp\w*|hips?|legs?|groin|bump"
    r"|(can'?t|cannot|won'?t|doesn'?t|didn'?t|never) (stop|start|end)\w*)\b"
)


def _urgency(flag: str) -> str:
    from triage import red_flag_urgency

    return red_flag_urgency(flag)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class CaseEntityExtractor(GraphComponent, EntityExtractorMixin):
    """Extracts triage case fields and red flags with our own spaCy rules."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        """Returns the default config."""
        return {"override_red_flag_intent": True}

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> str | None:
        """Retrains when a pattern file or the extractor code changes."""
        digest = hashlib.sha256()
        import triage.contract

        sources = [Path(extractor.__file__), Path(triage.contract.__file__)]
        sources += [Path(red_flag_signal.__file__), *red_flag_signal.example_files()]
        for path in [*sources, *extractor.pattern_files()]:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()

    def __init__(
        self,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        nlp: Any = None,
        signal: red_flag_signal.RedFlagSignal | None = None,
    ) -> None:
        """Creates the component.

        `nlp` is the spaCy pipeline and `signal` the second signal for warning signs,
        once built or loaded.
        """
        self._config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self._nlp = nlp
        self._signal = signal

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> CaseEntityExtractor:
        """Creates an untrained component."""
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Builds the pipeline and fits the second signal; stores both in the model.

        The pipeline comes from the pattern files, the signal from the example files.
        """
        self._nlp = extractor.build_nlp()
        self._signal = red_flag_signal.RedFlagSignal.fit(red_flag_signal.load_examples())
        with self._model_storage.write_to(self._resource) as directory:
            self._nlp.to_disk(directory / PIPELINE_DIR)
            self._signal.save(directory)
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> CaseEntityExtractor:
        """Loads the pipeline stored at train time."""
        import spacy

        with model_storage.read_from(resource) as directory:
            nlp = spacy.load(directory / PIPELINE_DIR)
            signal = red_flag_signal.RedFlagSignal.load(directory)
        return cls(config, model_storage, resource, nlp, signal)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Leaves training data alone: the classifier learns intents only."""
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Adds case-field entities and, for red flags, the red-flag intent."""
        if self._nlp is None:
            self._nlp = extractor.build_nlp()
        if self._signal is None:
            self._signal = red_flag_signal.default()
        for message in messages:
            text = message.get(TEXT) or ""
            found = self.add_extractor_name(extractor.extract(self._nlp, text, self._signal))
            message.set(ENTITIES, message.get(ENTITIES, []) + found, add_to_output=True)
            if self._config["override_red_flag_intent"]:
                self._set_red_flag_intent(message, found)
        return messages

    @staticmethod
    def _set_red_flag_intent(message: Message, entities: List[Dict[str, Any]]) -> None:
        def values(name: str) -> List[str]:
            return [e["value"] for e in entities if e["entity"] == name]

        flags = values("red_flags")
        intent = message.get(INTENT) or {}
        ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get("name")]
        red_intents = set(RED_FLAG_INTENTS.values()) | {PREGNANCY_INTENT, POSSIBLE_INTENT}
        if flags:
            level = "emergency" if any(_urgency(f) == "emergency" for f in flags) else "urgent"
            new = {"name": RED_FLAG_INTENTS[level], "confidence": 1.0}
        elif values("pregnancy_red_flags"):
            new = {"name": PREGNANCY_INTENT, "confidence": 1.0}
        elif values("possible_red_flags"):
            new = {"name": POSSIBLE_INTENT, "confidence": 1.0}
        elif values("question_topic") and intent.get("name") in ANSWER_LIKE:
            # "Would a labral tear change any of this?": a side question, even when it
            # holds a correction word the classifier took for a correction.
            new = {"name": values("question_topic")[0], "confidence": 1.0}
        elif intent.get("name") == "nlu_fallback" and any(
            e["entity"] not in NON_CASE_ENTITIES for e in entities
        ):
            # Unsure of the intent, but she told us about her pain: treat it as an answer.
            new = {"name": "inform", "confidence": intent.get("confidence", 0.0)}
        elif intent.get("name") in CONTROL_INTENTS and not _is_command(
            intent["name"], message.get(TEXT) or "", entities
        ):
            # The best other intent if the classifier is at all sure of it (the fallback
            # classifier's threshold), else "didn't catch that".
            new = next(
                (
                    dict(r)
                    for r in ranking
                    if r["name"] not in CONTROL_INTENTS | red_intents
                    and r.get("confidence", 0.0) >= FALLBACK_THRESHOLD
                ),
                {"name": "nlu_fallback", "confidence": FALLBACK_THRESHOLD},
            )
            if any(e["entity"] not in NON_CASE_ENTITIES for e in entities):
                new = {"name": "inform", "confidence": new.get("confidence", 0.0)}
        elif intent.get("name") in red_intents:
            # The classifier suspects a red flag the rules did not find (e.g. "no
            # bleeding"): fall back to the best other intent.
            new = next(
                (dict(r) for r in ranking if r["name"] not in red_intents),
                {"name": "inform", "confidence": 0.0},
            )
        else:
            return
        ranking = [new] + [r for r in ranking if r["name"] != new["name"]]
        message.set(INTENT, new, add_to_output=True)
        message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)


def _is_command(intent: str, text: str, entities: List[Dict[str, Any]]) -> bool:
    """True if `text` says the control command `intent` ("start again"), not her pain."""
    lowered = text.lower()
    if text.strip().startswith("/"):  # a button's payload (/restart), read by Rasa
        return True
    if any(e["entity"] not in NON_CASE_ENTITIES for e in entities):
        return False
    return bool(COMMAND_CUES[intent].search(lowered)) and not NOT_A_COMMAND.search(lowered)
