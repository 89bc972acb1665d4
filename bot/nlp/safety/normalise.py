"""Turns what people type into plain words the safety net can match.

Lower case, accents and punctuation removed, apostrophes dropped (``don't`` ->
``dont``), a letter repeated three or more times shortened (``sooo`` -> ``soo``),
then text-speak expanded word by word (``im`` -> ``i am``, ``kms`` -> ``kill
myself``). A digit standing between two words is read as a word (``scared 2 go``
-> ``scared to go``). The text-speak table comes from the patterns file.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc\u0060\u00b4]")
# Before apostrophes go: "od'd" (overdosed) must not become the word "odd".
_OVERDOSED = re.compile(r"\bod['\u2019]?(?:d|ed)\b|\bodd?ing\b")
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_REPEATS = re.compile(r"([a-z])\1{2,}")


@dataclass(frozen=True)
class Normaliser:
    """Turns raw text into a list of plain words.

    Attributes:
        text_speak: Word -> replacement words (``im`` -> ``i am``).
        between_words: Token -> word, used only when the token stands between
            two words made of letters (``2`` -> ``to``).
    """

    text_speak: Dict[str, Tuple[str, ...]] = field(default_factory=dict)
    between_words: Dict[str, str] = field(default_factory=dict)

    @staticmethod
    def raw_words(text: str) -> List[str]:
        """Splits text into lower-case words, before text-speak expansion.

        Args:
            text: Any text.

        Returns:
            The words, with punctuation, accents and apostrophes removed.
        """
        text = unicodedata.normalize("NFKD", text.lower())
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
        text = _OVERDOSED.sub(lambda m: "overdosing" if m.group(0).endswith("ing") else "overdosed", text)
        text = _APOSTROPHES.sub("", text)
        text = _NOT_WORD.sub(" ", text)
        text = _REPEATS.sub(r"\1\1", text)
        return text.split()

    def expand(self, words: List[str]) -> List[str]:
        """Expands text-speak in a list of raw words.

        Args:
            words: Words from :meth:`raw_words`.

        Returns:
            The expanded words.
        """
        out: List[str] = []
        last = len(words) - 1
        for i, word in enumerate(words):
            if word in self.between_words and 0 < i < last and words[i - 1].isalpha() and words[i + 1].isalpha():
                out.append(self.between_words[word])
                continue
            out.extend(self.text_speak.get(word, (word,)))
        return out

    def __call__(self, text: str) -> List[str]:
        """Normalises text into words.

        Args:
            text: Any text.

        Returns:
            The normalised words.
        """
        return self.expand(self.raw_words(text))
