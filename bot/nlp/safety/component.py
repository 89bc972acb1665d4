"""Rasa NLU component that makes sure someone who may not be safe gets 999 and Childline.

It sits last in the NLU pipeline. For every message it decides one of three things, and
records it in the message attribute ``safety_net`` (part of the parse data that Rasa stores
on the ``UserUttered`` event; actions read ``tracker.latest_message["safety_net"]``):

* **disclosure**: a disclosure pattern of ``knowledge/safety_net.yml`` matched. The intent
  becomes ``safeguarding`` and the person gets the full safety reply.
* **risk**: a risk pattern matched, or the safety classifier (:mod:`bot.nlp.safety.classifier`)
  scored the message at or above ``classifier_threshold``, or the intent classifier gave
  ``safeguarding`` ``intent_vote_threshold`` or more (measured: a lower vote, or "safeguarding
  ranked first" at any confidence, added false alarms and no recall the classifier lacked). The intent also becomes
  ``safeguarding``; the action gives 999 and Childline at once and a gentle check. The best
  other intent is kept as ``then``, so that "No, everyone is safe" goes back to the question.
* nothing: the message is left as it is; but if the intent classifier alone put
  ``safeguarding`` first (below ``intent_vote_threshold``), the intent becomes ``nlu_fallback``,
  so no reply rests on an unconfirmed ``safeguarding`` (the fallback offers the best other guess).

Whatever else the message asked, and even when the fallback classifier had replaced the
intent with ``nlu_fallback``. The attribute also says who seems to be talking (``speaker``:
``adult`` or ``child``), the category and why (``source``: ``pattern``, ``classifier`` or
``intent``). Message text is never logged.

Pipeline entry (``config.yml``)::

    - name: bot.nlp.safety.component.SafetyNet
      patterns_file: knowledge/safety_net.yml
      classifier_file: build/safety_classifier.joblib   # null: no classifier
      classifier_threshold: 0.5
      intent_vote_threshold: 0.9

The files are read when the model is loaded: a broken or missing file stops the assistant
from starting, with an error naming it.
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
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.nlp.safety import classifier as risk_model
from bot.nlp.safety.load import DEFAULT_PATTERNS_FILE, load_matcher
from bot.nlp.safety.match import CHILD, DISCLOSURE, RISK, SafetyMatcher, SafetyNetConfigError

logger = logging.getLogger(__name__)

SAFEGUARDING_INTENT = "safeguarding"
"""The intent this component sets. The domain must list it."""
SAFETY_NET_ATTRIBUTE = "safety_net"
"""The message attribute (and parse data key) that says what the net found."""
RAW_TEXT_ATTRIBUTE = "raw_text"
"""Set by the text normaliser (bot/nlp/normalise.py): the text as the person typed it."""

SOURCE_PATTERN = "pattern"
SOURCE_CLASSIFIER = "classifier"
SOURCE_INTENT = "intent"
NOT_INTENTS = {SAFEGUARDING_INTENT, "nlu_fallback"}
THEN_MIN_CONFIDENCE = 0.3

PATTERNS_FILE_KEY = "patterns_file"
CLASSIFIER_FILE_KEY = "classifier_file"
CLASSIFIER_THRESHOLD_KEY = "classifier_threshold"
INTENT_VOTE_KEY = "intent_vote_threshold"


def intent_confidence(message: Message, name: str) -> float:
    """The highest confidence the intent classifiers gave ``name`` (0.0 if none)."""
    candidates: List[Dict[Text, Any]] = []
    intent = message.get(INTENT)
    if isinstance(intent, dict):
        candidates.append(intent)
    ranking = message.get(INTENT_RANKING_KEY)
    if isinstance(ranking, list):
        candidates.extend(item for item in ranking if isinstance(item, dict))
    best = 0.0
    for item in candidates:
        confidence = item.get(PREDICTED_CONFIDENCE_KEY)
        if (
            item.get(INTENT_NAME_KEY) == name
            and isinstance(confidence, (int, float))
            and not isinstance(confidence, bool)
        ):
            best = max(best, float(confidence))
    return best


def best_other_intent(message: Message) -> Optional[Dict[str, Any]]:
    """The most likely intent that is not safety or the fallback, if it is likely enough."""
    ranking = message.get(INTENT_RANKING_KEY)
    items = [i for i in ranking if isinstance(i, dict)] if isinstance(ranking, list) else []
    intent = message.get(INTENT)
    if isinstance(intent, dict):
        items.append(intent)
    others = [i for i in items if i.get(INTENT_NAME_KEY) not in NOT_INTENTS and i.get(PREDICTED_CONFIDENCE_KEY)]
    if not others:
        return None
    best = max(others, key=lambda i: float(i[PREDICTED_CONFIDENCE_KEY]))
    if float(best[PREDICTED_CONFIDENCE_KEY]) < THEN_MIN_CONFIDENCE:
        return None
    return {"intent": str(best[INTENT_NAME_KEY]), "confidence": round(float(best[PREDICTED_CONFIDENCE_KEY]), 3)}


def _threshold(config: Dict[Text, Any], key: str, name: str) -> float:
    value = config.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= float(value) <= 1.0:
        raise InvalidConfigException(f"{name}: '{key}' must be a number from 0 to 1, got {value!r}.")
    return float(value)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class SafetyNet(GraphComponent, IntentClassifier):
    """Sets the ``safeguarding`` intent when a message may come from someone not safe."""

    @classmethod
    def required_components(cls) -> List[Type[Any]]:
        """Components that must come before this one (none are required)."""
        return []

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config (see parent class for full docstring)."""
        return {
            PATTERNS_FILE_KEY: DEFAULT_PATTERNS_FILE,
            CLASSIFIER_FILE_KEY: risk_model.DEFAULT_MODEL_FILE,
            CLASSIFIER_THRESHOLD_KEY: 0.5,
            INTENT_VOTE_KEY: 0.9,
        }

    def __init__(
        self, config: Dict[Text, Any], matcher: SafetyMatcher, classifier: Optional[risk_model.RiskClassifier]
    ) -> None:
        """Creates the component.

        Args:
            config: The component's config (defaults already merged in).
            matcher: The compiled safety net patterns.
            classifier: The safety classifier, or None when the config turns it off.
        """
        self.component_config = config
        self.matcher = matcher
        self.classifier = classifier
        self.classifier_threshold = float(config[CLASSIFIER_THRESHOLD_KEY])
        self.intent_vote_threshold = float(config[INTENT_VOTE_KEY])

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SafetyNet:
        """Creates the component, compiling its patterns file and loading its classifier.

        Raises:
            InvalidConfigException: A threshold is not a number from 0 to 1, or a file is
                missing or not valid (the message names it).
        """
        _threshold(config, CLASSIFIER_THRESHOLD_KEY, cls.__name__)
        _threshold(config, INTENT_VOTE_KEY, cls.__name__)
        try:
            matcher = load_matcher(config.get(PATTERNS_FILE_KEY))
        except SafetyNetConfigError as error:
            raise InvalidConfigException(
                f"{cls.__name__}: the safety net patterns file is not valid: {error}"
            ) from error
        classifier = None
        if config.get(CLASSIFIER_FILE_KEY):
            try:
                classifier = risk_model.load(risk_model.resolve(config[CLASSIFIER_FILE_KEY]), matcher)
            except risk_model.SafetyClassifierError as error:
                raise InvalidConfigException(f"{cls.__name__}: {error}") from error
        logger.debug("Safety net loaded: %d patterns, categories %s.", matcher.pattern_count, len(matcher.categories))
        return cls(config, matcher, classifier)

    def process(self, messages: List[Message]) -> List[Message]:
        """Sets the safeguarding intent, and says why, on every message that needs it."""
        for message in messages:
            found = self.assess(message)
            if found is not None:
                _put_safeguarding_first(message, found)
            elif _top_intent(message) == SAFEGUARDING_INTENT:
                # The intent classifier alone put `safeguarding` first, not surely enough to check:
                # hand it to the fallback, which offers the best other guess.
                _demote_to_fallback(message)
        return messages

    def assess(self, message: Message) -> Optional[Dict[str, Any]]:
        """What the safety net finds in one message (the ``safety_net`` attribute), or None."""
        text = message.get(RAW_TEXT_ATTRIBUTE) or message.get(TEXT)
        text = text if isinstance(text, str) else ""
        verdict = self.matcher.assess(text)
        if verdict is not None:
            category = self.matcher.category(verdict.category)
            found: Dict[str, Any] = {
                "level": verdict.level,
                "category": verdict.category,
                "speaker": verdict.speaker,
                "source": SOURCE_PATTERN,
                "pattern": verdict.pattern,
                "helplines": list(category.helplines) if category else [],
                "urgent": bool(category and category.urgent),
            }
        else:
            source = None
            score = self.classifier.score(text) if self.classifier is not None else 0.0
            if score >= self.classifier_threshold:
                source = SOURCE_CLASSIFIER
            elif self._intent_votes(message):
                source = SOURCE_INTENT
            if source is None:
                return None
            found = {
                "level": RISK,
                "category": None,
                "speaker": self.matcher.speaker(text) if text else CHILD,
                "source": source,
                "score": round(score, 3),
            }
        if found["level"] != DISCLOSURE:
            found["then"] = best_other_intent(message)
        logger.debug("Safety net: %s (%s, %s).", found["level"], found["source"], found["category"])
        return found

    def _intent_votes(self, message: Message) -> bool:
        return intent_confidence(message, SAFEGUARDING_INTENT) >= self.intent_vote_threshold


def _top_intent(message: Message) -> Optional[str]:
    intent = message.get(INTENT)
    return intent.get(INTENT_NAME_KEY) if isinstance(intent, dict) else None


def _demote_to_fallback(message: Message) -> None:
    """``nlu_fallback`` first, so that no reply ever rests on an unconfirmed ``safeguarding``."""
    confidence = message.get(INTENT).get(PREDICTED_CONFIDENCE_KEY)
    fallback = {INTENT_NAME_KEY: "nlu_fallback", PREDICTED_CONFIDENCE_KEY: confidence}
    ranking = [r for r in (message.get(INTENT_RANKING_KEY) or []) if r.get(INTENT_NAME_KEY) != "nlu_fallback"]
    message.set(INTENT, fallback, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [dict(fallback), *ranking], add_to_output=True)


def _put_safeguarding_first(message: Message, found: Dict[str, Any]) -> None:
    """Makes ``safeguarding`` the message's intent and the head of its ranking, and records why."""
    intent = {INTENT_NAME_KEY: SAFEGUARDING_INTENT, PREDICTED_CONFIDENCE_KEY: 1.0}
    ranking = message.get(INTENT_RANKING_KEY)
    others = [
        item
        for item in (ranking if isinstance(ranking, list) else [])
        if not (isinstance(item, dict) and item.get(INTENT_NAME_KEY) == SAFEGUARDING_INTENT)
    ]
    message.set(INTENT, intent, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [dict(intent), *others], add_to_output=True)
    message.set(SAFETY_NET_ATTRIBUTE, found, add_to_output=True)
