"""Rasa NLU component that makes sure a child who is not safe gets the safety reply.

It sits last in the NLU pipeline, after the intent classifier and the
``FallbackClassifier``. For every message it sets the intent to
``safeguarding`` (confidence 1.0, first in the ranking) when

* the safety net patterns (:mod:`bot.nlp.safety.match`) match the text, or
* the classifier ranked ``safeguarding`` at or above ``classifier_threshold``,

whatever else the message asked, and even when the fallback classifier had
replaced the intent with ``nlu_fallback``. It also records why, as the message
attribute ``safety_net`` (``{"category": ..., "source": "pattern"}`` or
``{"category": None, "source": "classifier"}``). The attribute is added to the
message's output properties, so it is part of the parse data that Rasa stores
on the ``UserUttered`` event: actions read it as
``tracker.latest_message["safety_net"]``.

Pipeline entry (``config.yml``)::

    - name: bot.nlp.safety.component.SafetyNet
      patterns_file: knowledge/safety_net.yml   # the default
      classifier_threshold: 0.5                 # the default

The patterns file is read when the model is loaded: a broken file stops the
assistant from starting, with an error naming the file. Message text is never
logged.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text, Type

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message

from bot.nlp.safety.match import (
    DEFAULT_PATTERNS_FILE,
    SafetyMatcher,
    SafetyNetConfigError,
    load_matcher,
)

logger = logging.getLogger(__name__)

SAFEGUARDING_INTENT = "safeguarding"
"""The intent this component sets. The domain must list it."""

SAFETY_NET_ATTRIBUTE = "safety_net"
"""The message attribute (and parse data key) that says why the net fired."""

SOURCE_PATTERN = "pattern"
SOURCE_CLASSIFIER = "classifier"

PATTERNS_FILE_KEY = "patterns_file"
CLASSIFIER_THRESHOLD_KEY = "classifier_threshold"


NLU_FALLBACK_INTENT = "nlu_fallback"
SOURCE_UNSURE = "classifier_unsure"


def classifier_confidence(message: Message) -> float:
    """Returns the confidence the classifiers gave the safeguarding intent.

    Args:
        message: A message after the intent classifiers have run.

    Returns:
        The highest confidence for ``safeguarding`` in the intent or the intent
        ranking, or 0.0 if it is in neither.
    """
    candidates: List[Dict[Text, Any]] = []
    intent = message.get(INTENT)
    if isinstance(intent, dict):
        candidates.append(intent)
    ranking = message.get(INTENT_RANKING_KEY)
    if isinstance(ranking, list):
        candidates.extend(item for item in ranking if isinstance(item, dict))
    best = 0.0
    for item in candidates:
        if item.get(INTENT_NAME_KEY) != SAFEGUARDING_INTENT:
            continue
        confidence = item.get(PREDICTED_CONFIDENCE_KEY)
        if isinstance(confidence, (int, float)) and not isinstance(confidence, bool):
            best = max(best, float(confidence))
    return best


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class SafetyNet(GraphComponent, IntentClassifier):
    """Sets the ``safeguarding`` intent when a message may come from someone unsafe."""

    @classmethod
    def required_components(cls) -> List[Type[Any]]:
        """Components that must come before this one (none are required)."""
        return []

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config (see parent class for full docstring)."""
        return {
            # The YAML file with the patterns; a relative path is looked up in
            # the working directory, then in the project root.
            PATTERNS_FILE_KEY: DEFAULT_PATTERNS_FILE,
            # The classifier's confidence for `safeguarding` at or above which
            # the intent is forced to `safeguarding` even without a pattern.
            CLASSIFIER_THRESHOLD_KEY: 0.5,
        }

    def __init__(self, config: Dict[Text, Any], matcher: SafetyMatcher) -> None:
        """Creates the component.

        Args:
            config: The component's config (defaults already merged in).
            matcher: The compiled safety net patterns.
        """
        self.component_config = config
        self.matcher = matcher
        self.classifier_threshold = float(config[CLASSIFIER_THRESHOLD_KEY])

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SafetyNet:
        """Creates the component and compiles its patterns file.

        Args:
            config: The component's config (defaults already merged in).
            model_storage: Unused: the component stores nothing.
            resource: Unused: the component stores nothing.
            execution_context: Unused.

        Returns:
            The component.

        Raises:
            InvalidConfigException: The threshold is not a number from 0 to 1,
                or the patterns file is missing or not valid (the message
                names the file).
        """
        threshold = config.get(CLASSIFIER_THRESHOLD_KEY)
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not 0.0 <= float(threshold) <= 1.0:
            raise InvalidConfigException(
                f"{cls.__name__}: '{CLASSIFIER_THRESHOLD_KEY}' must be a number from 0 to 1, got {threshold!r}."
            )
        try:
            matcher = load_matcher(config.get(PATTERNS_FILE_KEY))
        except SafetyNetConfigError as error:
            raise InvalidConfigException(
                f"{cls.__name__}: the safety net patterns file is not valid: {error}"
            ) from error
        logger.debug(
            "Safety net loaded: %d patterns, categories %s.",
            matcher.pattern_count,
            ", ".join(matcher.categories),
        )
        return cls(config, matcher)

    def process(self, messages: List[Message]) -> List[Message]:
        """Sets the safeguarding intent on every message that needs it.

        Args:
            messages: Messages after the intent classifiers have run.

        Returns:
            The same messages; the ones that need the safety reply now have
            the intent ``safeguarding`` and the attribute ``safety_net``.
        """
        for message in messages:
            reason = self._reason(message)
            if reason is not None:
                self._set_safeguarding(message, reason)
            elif self._is_unconfirmed_safeguarding(message):
                self._set_unsure(message)
        return messages

    @staticmethod
    def _is_unconfirmed_safeguarding(message: Message) -> bool:
        intent = message.get(INTENT)
        return isinstance(intent, dict) and intent.get(INTENT_NAME_KEY) == SAFEGUARDING_INTENT

    @staticmethod
    def _set_unsure(message: Message) -> None:
        """DIET alone put ``safeguarding`` first, but not surely enough: check, don't derail.

        The intent becomes ``nlu_fallback`` (``safeguarding`` stays first among the rest of the
        ranking), so the two-stage fallback asks the person, with the helplines given at once
        (actions/fallback.py), instead of either ignoring it or giving the full safety reply to
        an ordinary question such as "is there help for kids who are bullied".
        """
        confidence = message.get(INTENT).get(PREDICTED_CONFIDENCE_KEY)
        _put_first(message, NLU_FALLBACK_INTENT, confidence, {"category": None, "source": SOURCE_UNSURE})

    def _reason(self, message: Message) -> Optional[Dict[Text, Any]]:
        text = message.get(TEXT)
        match = self.matcher.assess(text) if isinstance(text, str) else None
        if match is not None:
            logger.debug(
                "Safety net: pattern matched (category %s, pattern %r).",
                match.category,
                match.pattern,
            )
            return {"category": match.category, "source": SOURCE_PATTERN}
        confidence = classifier_confidence(message)
        if confidence >= self.classifier_threshold:
            logger.debug(
                "Safety net: classifier gave '%s' %.2f (threshold %.2f).",
                SAFEGUARDING_INTENT,
                confidence,
                self.classifier_threshold,
            )
            return {"category": None, "source": SOURCE_CLASSIFIER}
        return None

    @staticmethod
    def _set_safeguarding(message: Message, reason: Dict[Text, Any]) -> None:
        _put_first(message, SAFEGUARDING_INTENT, 1.0, reason)


def _put_first(message: Message, name: Text, confidence: Any, reason: Dict[Text, Any]) -> None:
    """Makes ``name`` the message's intent and the head of its ranking, and records why."""
    intent = {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: confidence}
    ranking = message.get(INTENT_RANKING_KEY)
    others = [
        item
        for item in (ranking if isinstance(ranking, list) else [])
        if not (isinstance(item, dict) and item.get(INTENT_NAME_KEY) == name)
    ]
    message.set(INTENT, intent, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [dict(intent), *others], add_to_output=True)
    message.set(SAFETY_NET_ATTRIBUTE, reason, add_to_output=True)
