"""Tidies what people type before the assistant tries to understand it.

A Rasa NLU component, first in the pipeline (``config.yml``), used both when training and when
serving, so the classifier always sees text tidied the same way:

1. **Text-speak** is expanded word by word from the safety net's list (``text_speak`` in
   ``knowledge/safety_net.yml``): ``wot`` -> ``what``, ``u`` -> ``you``, ``hw`` -> ``how``.
2. **Spelling**: a word the assistant does not know (not in the English frequency dictionary
   that ships with ``symspellpy``, not in the knowledge file, not in the training data) is
   replaced by the closest known word, preferring the knowledge file's own words
   ("cordinaters" -> "coordinators", "lancashre" -> "lancashire").
3. **Greetings and fillers around a question** are dropped ("hiya wots the plan lol" -> "what
   is the plan"), so a greeting never swallows the question. A message that is only a
   greeting is kept as it is.

The text as typed is kept in the message attribute ``raw_text``; ``RestoreRawText`` (just before
the safety net) puts it back, so actions, forms and the safety net see what the person wrote.
Nothing here is logged.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Set, Text, Type

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlp.resources import read_json, write_json
from bot.nlp.safety.load import load_matcher

RAW_TEXT = "raw_text"
ROOT = Path(__file__).resolve().parents[2]
KNOWLEDGE_FILE = ROOT / "knowledge" / "lancashire.yml"
VOCABULARY_FILE = "vocabulary.json"
_TOKEN = re.compile(r"[A-Za-z0-9£'’.,-]*[A-Za-z0-9£]|[^\sA-Za-z0-9]")
_WORD = re.compile(r"^[a-z]+$")
# Words said around a question that carry no meaning for it.
GREETINGS = frozenset("hi hiya hey heya hello helo hallo hullo yo oi sup wassup morning afternoon evening good".split())
LEADING_GREETINGS = GREETINGS | frozenset("ok okay so um umm erm er there mate bot please pls plz excuse me ey".split())
TRAILING_FILLERS = frozenset(
    "lol lmao haha ha xx x xd pls plz please thx ta ty mate thanks cheers ngl tbh fam bro innit".split()
)


def _words_of(texts: Iterable[str]) -> Set[str]:
    found: Set[str] = set()
    for text in texts:
        found.update(w for w in re.findall(r"[a-z]+", text.lower()))
    return found


def knowledge_words(path: Path = KNOWLEDGE_FILE) -> Set[str]:
    """Every word of the knowledge file (titles, answers, quotes, places, outcome names)."""
    try:
        return _words_of([path.read_text(encoding="utf-8")])
    except OSError:
        return set()


class Speller:
    """Corrects unknown words to the nearest known one (symspellpy's English dictionary)."""

    def __init__(self, domain: Set[str]) -> None:
        """Loads the dictionary and adds the domain's words, weighted above ordinary words."""
        import importlib.resources

        from symspellpy import SymSpell

        self._symspell = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
        dictionary = importlib.resources.files("symspellpy") / "frequency_dictionary_en_82_765.txt"
        self._symspell.load_dictionary(str(dictionary), term_index=0, count_index=1)
        for word in domain:
            if len(word) > 1:
                self._symspell.create_dictionary_entry(word, 10**10)
        self._known = set(self._symspell.words) | domain

    def known(self, word: str) -> bool:
        """Whether the word is in the dictionary or the domain."""
        return word in self._known

    def correct(self, word: str) -> str:
        """The word, or the nearest known word if it is unknown and one is close enough."""
        from symspellpy import Verbosity

        if len(word) < 4 or not _WORD.match(word) or word in self._known:
            return word
        distance = 1 if len(word) <= 5 else 2
        suggestions = self._symspell.lookup(word, Verbosity.TOP, max_edit_distance=distance, transfer_casing=False)
        return suggestions[0].term if suggestions else word


class Normaliser:
    """Text-speak, spelling and greeting-stripping, as described at the top of this module."""

    def __init__(self, text_speak: Dict[str, tuple], speller: Optional[Speller]) -> None:
        """Creates the normaliser from a text-speak table and an optional speller."""
        self.text_speak = text_speak
        self.speller = speller

    def __call__(self, text: str) -> str:
        """The tidied text (lower case where a word was changed, as typed otherwise)."""
        tokens = _TOKEN.findall(text or "")
        words: List[str] = []
        for token in tokens:
            lower = token.lower().replace("’", "'")
            key = lower.replace("'", "")
            if key in self.text_speak:
                words.extend(self.text_speak[key])
            elif self.speller is not None and _WORD.match(key):
                corrected = self.speller.correct(key)
                words.append(token if corrected == key else corrected)
            else:
                words.append(token)
        return " ".join(strip_greeting(words))


def _is_word(token: str) -> bool:
    return any(ch.isalnum() for ch in token)


def strip_greeting(words: List[str]) -> List[str]:
    """Drops greetings before, and fillers after, a question; keeps a message that is only that."""
    content = [w for w in words if _is_word(w)]
    if not content or content[0].lower() not in GREETINGS:
        start = 0
    else:
        start = 0
        while start < len(words) and (not _is_word(words[start]) or words[start].lower() in LEADING_GREETINGS):
            start += 1
    end = len(words)
    while end > start and (not _is_word(words[end - 1]) or words[end - 1].lower() in TRAILING_FILLERS):
        end -= 1
    kept = [w for w in words[start:end] if _is_word(w)]
    if len(kept) < 2:
        return words
    # keep a final question mark: it helps nothing else, but reads naturally in debugging
    return words[start:end]


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=True)
class TextNormaliser(GraphComponent):
    """Rasa component: tidies ``TEXT`` before the tokenizer (see the module docstring)."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """``spelling``: correct unknown words; ``patterns_file``: where the text-speak list is."""
        return {"spelling": True, "patterns_file": "knowledge/safety_net.yml"}

    @classmethod
    def required_components(cls) -> List[Type[Any]]:
        """Nothing has to run before it."""
        return []

    def __init__(
        self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource, vocabulary: Set[str]
    ) -> None:
        """Creates the component with the vocabulary it learned (training data + knowledge words)."""
        self._config = config
        self._storage = model_storage
        self._resource = resource
        self.vocabulary = vocabulary
        text_speak = load_matcher(config.get("patterns_file")).normaliser.text_speak
        speller = Speller(vocabulary | knowledge_words()) if config.get("spelling", True) else None
        self.normalise = Normaliser(text_speak, speller)

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "TextNormaliser":
        """A new, untrained component."""
        return cls(config, model_storage, resource, set())

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "TextNormaliser":
        """The trained component, with the vocabulary saved in the model."""
        vocabulary = set(read_json(model_storage, resource, VOCABULARY_FILE, []))
        return cls(config, model_storage, resource, vocabulary)

    def train(self, training_data: TrainingData) -> Resource:
        """Learns the training data's words, so they are never "corrected", and saves them."""
        vocabulary = _words_of(m.get(TEXT) or "" for m in training_data.training_examples)
        return write_json(self._storage, self._resource, VOCABULARY_FILE, sorted(vocabulary))

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Tidies every training example the same way as live messages."""
        for message in training_data.training_examples:
            self._tidy(message)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Tidies live messages."""
        for message in messages:
            self._tidy(message)
        return messages

    def _tidy(self, message: Message) -> None:
        text = message.get(TEXT)
        if not isinstance(text, str) or not text or text.startswith("/"):
            return
        message.set(RAW_TEXT, text)
        message.set(TEXT, self.normalise(text))


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=False)
class RestoreRawText(GraphComponent):
    """Rasa component: puts back the text as typed, after the classifiers have used the tidy one."""

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "RestoreRawText":
        """The component (it has no settings)."""
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        """Sets ``TEXT`` back to ``raw_text`` where the normaliser changed it."""
        for message in messages:
            raw = message.get(RAW_TEXT)
            if isinstance(raw, str) and raw:
                message.set("normalised_text", message.get(TEXT), add_to_output=True)
                message.set(TEXT, raw)
        return messages
