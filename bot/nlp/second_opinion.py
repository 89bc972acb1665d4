"""A second opinion when the intent classifier is unsure: rank the assistant's topics with BM25.

A Rasa NLU component that runs after the ``FallbackClassifier``. Only when the classifier is
unsure (the intent is ``nlu_fallback``, or its confidence is below ``unsure_below``), it ranks
documents with BM25 (``rank-bm25``):

- one per knowledge topic: its title, answer lines, source quote and ``keywords`` from
  ``knowledge/lancashire.yml`` (so a new topic with good keywords is found without new
  training examples), labelled ``ask_<topic>``;
- one per training example, labelled with its intent.

An intent's score is the best score of its documents. If the best intent is clearly ahead of
the next one (``margin``) and is one of the classifier's own top guesses, or is far ahead, the
message gets that intent: the person gets an answer. Otherwise the best intent is kept in the
message attribute ``second_opinion``, and the fallback action offers it in plain words
("Did you want to know about the money?") instead of "say it another way".
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Text, Tuple, Type

import yaml
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlp.resources import read_json, write_json

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS_FILE = "documents.json"
SECOND_OPINION = "second_opinion"
NLU_FALLBACK = "nlu_fallback"
NEVER = {"nlu_fallback", "safeguarding"}
_WORD = re.compile(r"[a-z0-9£]+")
# Words too common to tell topics apart.
STOP_WORDS = {
    "a",
    "an",
    "the",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "to",
    "of",
    "in",
    "on",
    "for",
    "and",
    "or",
    "it",
    "its",
    "this",
    "that",
    "what",
    "whats",
    "how",
    "who",
    "do",
    "does",
    "did",
    "can",
    "could",
    "i",
    "you",
    "me",
    "my",
    "we",
    "our",
    "your",
    "they",
    "their",
    "there",
    "about",
    "tell",
    "please",
    "pls",
    "with",
    "at",
    "by",
    "from",
    "as",
    "so",
    "any",
    "some",
    "if",
    "would",
    "like",
    "know",
    "want",
    "just",
    "get",
    "have",
    "has",
    "will",
    "which",
    "when",
    "where",
    "why",
    "u",
    "ur",
    "r",
    "im",
    "lol",
    "hi",
    "hey",
    "hello",
    "hiya",
}


def words(text: str) -> List[str]:
    """Lower-case words without stop words, with a crude plural fold (boards -> board)."""
    out = []
    for word in _WORD.findall(text.lower()):
        if word in STOP_WORDS:
            continue
        if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.append(word)
    return out


def topic_documents(knowledge_file: Path) -> List[Tuple[str, str]]:
    """(intent, text) for every topic of the knowledge file."""
    data = yaml.safe_load(knowledge_file.read_text(encoding="utf-8")) or {}
    documents = []
    for topic_id, topic in (data.get("topics") or {}).items():
        parts = [topic.get("title", ""), *topic.get("answer", []), (topic.get("source") or {}).get("quote", "")]
        parts += topic.get("keywords", [])
        documents.append((f"ask_{topic_id}", " ".join(str(p) for p in parts)))
    return documents


class _BM25:
    """Okapi BM25 over tokenised documents (rank-bm25), with each document's intent."""

    def __init__(self, documents: List[Tuple[str, str]]) -> None:
        from rank_bm25 import BM25Okapi

        kept = [(intent, words(text)) for intent, text in documents]
        kept = [(intent, tokens) for intent, tokens in kept if tokens]
        self.intents = [intent for intent, _ in kept]
        self.model = BM25Okapi([tokens for _, tokens in kept]) if kept else None

    def rank(self, text: str) -> List[Tuple[str, float]]:
        """Intents with their best document score, best first."""
        query = words(text)
        if self.model is None or not query:
            return []
        best: Dict[str, float] = {}
        for intent, score in zip(self.intents, self.model.get_scores(query)):
            if score > best.get(intent, 0.0):
                best[intent] = float(score)
        return sorted(best.items(), key=lambda item: -item[1])


def _confidence(item: Dict[str, Any]) -> float:
    value = item.get(PREDICTED_CONFIDENCE_KEY)
    return float(value) if isinstance(value, (int, float)) and not math.isnan(float(value)) else 0.0


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class SecondOpinion(GraphComponent):
    """Rasa component: BM25 over the knowledge topics and training examples (module docstring)."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """Settings: when to run, and how sure BM25 must be to decide."""
        return {
            "knowledge_file": "knowledge/lancashire.yml",
            "unsure_below": 0.7,  # run when the classifier's confidence is below this
            "margin": 1.25,  # best BM25 score / second best, to decide
            "min_score": 3.0,  # below this BM25 has no opinion worth giving
            "top_k": 3,  # "one of the classifier's own top guesses"
            "far_ahead": 2.0,  # decide even if the classifier did not guess it
        }

    @classmethod
    def required_components(cls) -> List[Type[Any]]:
        """Nothing has to run before it (it reads the intent if there is one)."""
        return []

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        documents: List[Tuple[str, str]],
    ) -> None:
        """Creates the component with its documents (examples saved in the model + topics)."""
        self.config = {**self.get_default_config(), **config}
        self._storage = model_storage
        self._resource = resource
        self.documents = documents
        knowledge = Path(self.config["knowledge_file"])
        knowledge = knowledge if knowledge.is_absolute() else ROOT / knowledge
        self.index = _BM25(documents + topic_documents(knowledge))

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "SecondOpinion":
        """A new, untrained component."""
        return cls(config, model_storage, resource, [])

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "SecondOpinion":
        """The trained component, with the training examples saved in the model."""
        documents = [(str(d[0]), str(d[1])) for d in read_json(model_storage, resource, DOCUMENTS_FILE, [])]
        return cls(config, model_storage, resource, documents)

    def train(self, training_data: TrainingData) -> Resource:
        """Keeps every training example (tidied text) with its intent."""
        documents = [
            (str(m.get(INTENT)), str(m.get(TEXT)))
            for m in training_data.intent_examples
            if m.get(INTENT) and m.get(INTENT) not in NEVER
        ]
        return write_json(self._storage, self._resource, DOCUMENTS_FILE, documents)

    def process(self, messages: List[Message]) -> List[Message]:
        """Gives a second opinion on the messages the classifier is unsure of."""
        for message in messages:
            self._consider(message)
        return messages

    def _consider(self, message: Message) -> None:
        intent = message.get(INTENT) or {}
        name = intent.get(INTENT_NAME_KEY)
        if name not in (None, NLU_FALLBACK) and _confidence(intent) >= self.config["unsure_below"]:
            return
        text = message.get(TEXT)
        if not isinstance(text, str) or text.startswith("/"):
            return
        ranked = [(i, s) for i, s in self.index.rank(text) if i not in NEVER]
        if not ranked or ranked[0][1] < self.config["min_score"]:
            return
        best, score = ranked[0]
        runner_up = ranked[1][1] if len(ranked) > 1 else 0.0
        ratio = score / runner_up if runner_up > 0 else float("inf")
        ranking = [r for r in (message.get(INTENT_RANKING_KEY) or []) if r.get(INTENT_NAME_KEY) not in NEVER]
        guesses = {
            r.get(INTENT_NAME_KEY) for r in sorted(ranking, key=lambda r: -_confidence(r))[: self.config["top_k"]]
        }
        decided = ratio >= self.config["far_ahead"] or (ratio >= self.config["margin"] and best in guesses)
        opinion = {"intent": best, "score": round(score, 2), "ratio": round(min(ratio, 99.0), 2), "decided": decided}
        message.set(SECOND_OPINION, opinion, add_to_output=True)
        if decided:
            confidence = max(_confidence(intent), 0.6)
            chosen = {INTENT_NAME_KEY: best, PREDICTED_CONFIDENCE_KEY: confidence}
            others = [r for r in (message.get(INTENT_RANKING_KEY) or []) if r.get(INTENT_NAME_KEY) != best]
            message.set(INTENT, chosen, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [chosen, *others], add_to_output=True)


def known_intents(messages: List[Message]) -> Set[str]:
    """The intents of a list of messages (for tests)."""
    return {str(m.get(INTENT)) for m in messages if m.get(INTENT)}


def describe(opinion: Optional[Dict[str, Any]]) -> str:
    """A one-line description of a second opinion, for `make ask`."""
    if not opinion:
        return "none"
    verdict = "decided" if opinion.get("decided") else "offered"
    return f"{opinion['intent']} ({verdict}; BM25 {opinion['score']}, {opinion['ratio']}x the next)"
