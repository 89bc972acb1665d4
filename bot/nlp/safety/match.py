"""The safety net's matcher: compiled patterns checked against one message.

No Rasa imports: it can be used (and tested) on its own. Build one with
:func:`bot.nlp.safety.load.load_matcher`; the pattern syntax is explained at the
top of ``knowledge/safety_net.yml``.

How a message is checked (:meth:`SafetyMatcher.assess`):

1. The text is normalised (:mod:`bot.nlp.safety.normalise`).
2. "Not a crisis" guards are matched first. The words a guard covers are set
   aside, so no pattern can use them ("what does to feel safe mean").
3. The ``disclosure`` patterns of every category are tried, category by
   category in the order of the file: a match is a clear disclosure and gets the
   full safety reply.
4. If none matched, the ``risk`` patterns are tried the same way: a match means
   the person may not be safe, and gets the helplines at once and a gentle check.
5. The ``adult`` patterns, on the whole message, say whether an adult is talking
   (a parent, a teacher), so that the reply leads with the lines for adults.

Pattern words of ``fuzzy_min_length`` letters or more (5 by default) also match
a word one typing slip away (a letter missing, added, changed or two letters
swapped) that starts with the same letter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, FrozenSet, Iterator, List, Optional, Sequence, Set, Tuple, Union

from bot.nlp.safety.normalise import Normaliser

DISCLOSURE = "disclosure"
"""A clear disclosure: the full safety reply."""
RISK = "risk"
"""Words that may mean danger: helplines at once, then a gentle check."""
CHILD = "child"
ADULT = "adult"

_TOKEN_CACHE_SIZE = 20_000


class SafetyNetConfigError(ValueError):
    """The patterns file is missing or not valid. The message names the file."""


@dataclass(frozen=True)
class SafetyVerdict:
    """What the safety net found in a message.

    Attributes:
        level: ``DISCLOSURE`` (full safety reply) or ``RISK`` (gentle check).
        category: The category whose pattern matched, e.g. ``self_harm``.
        pattern: The pattern as written in the patterns file.
        speaker: ``ADULT`` when an adult seems to be talking about a child, else ``CHILD``.
    """

    level: str
    category: str
    pattern: str
    speaker: str = CHILD


@dataclass(frozen=True)
class Category:
    """One kind of danger in the taxonomy.

    Attributes:
        id: Its name, e.g. ``suicide``.
        about: What it covers, in words staff can read.
        helplines: Helpline ids (from the knowledge file) this kind of danger adds.
        urgent: Whether 999 goes first whoever is talking.
    """

    id: str
    about: str
    helplines: Tuple[str, ...] = ()
    urgent: bool = False


# ---------------------------------------------------------------------------
# Typo-tolerant comparison
# ---------------------------------------------------------------------------


def within_one_edit(a: str, b: str) -> bool:
    """Tells whether two words differ by at most one typing slip.

    A slip is one letter missing, added or changed, or two neighbouring
    letters swapped.

    Args:
        a: A word.
        b: Another word.

    Returns:
        ``True`` if the words are equal or one slip apart.
    """
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la > lb:
        a, b, la, lb = b, a, lb, la
    i = 0
    while i < la and a[i] == b[i]:
        i += 1
    if la < lb:
        return a[i:] == b[i + 1 :]
    if a[i + 1 :] == b[i + 1 :]:
        return True
    return i + 1 < la and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]


@dataclass(frozen=True)
class Term:
    """One pattern word: exact, typo-tolerant, or a word start (``hit*``)."""

    text: str
    prefix: bool
    fuzzy: bool

    def matches(self, token: str) -> bool:
        """Whether a message word is this pattern word."""
        if not self.prefix:
            if token == self.text:
                return True
            return self.fuzzy and token[:1] == self.text[:1] and within_one_edit(token, self.text)
        if token.startswith(self.text):
            return True
        if not self.fuzzy or token[:1] != self.text[:1]:
            return False
        n = len(self.text)
        return any(within_one_edit(token[:size], self.text) for size in (n - 1, n, n + 1) if len(token) >= size)


# ---------------------------------------------------------------------------
# Compiled patterns
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Word:
    """A pattern word, by its index in the matcher's table of terms."""

    term_id: int


@dataclass(frozen=True)
class Gap:
    """Up to ``most`` other words."""

    most: int


@dataclass(frozen=True)
class Maybe:
    """A word or choice that may be missing."""

    node: "Node"


@dataclass(frozen=True)
class Seq:
    """Words one after another."""

    items: Tuple["Node", ...]


@dataclass(frozen=True)
class Alt:
    """One of several choices."""

    options: Tuple["Node", ...]


Node = Union[Word, Gap, Maybe, Seq, Alt]
TokenTerms = List[FrozenSet[int]]


def _ends(node: Node, terms: TokenTerms, pos: int) -> Iterator[int]:
    """Yields every position where ``node`` can end when it starts at ``pos``."""
    if isinstance(node, Word):
        if pos < len(terms) and node.term_id in terms[pos]:
            yield pos + 1
    elif isinstance(node, Seq):
        yield from _seq_ends(node.items, 0, terms, pos)
    elif isinstance(node, Alt):
        for option in node.options:
            yield from _ends(option, terms, pos)
    elif isinstance(node, Maybe):
        yield from _ends(node.node, terms, pos)
        yield pos
    else:
        for skip in range(min(node.most, len(terms) - pos), -1, -1):
            yield pos + skip


def _seq_ends(items: Tuple[Node, ...], index: int, terms: TokenTerms, pos: int) -> Iterator[int]:
    if index == len(items):
        yield pos
        return
    for middle in _ends(items[index], terms, pos):
        yield from _seq_ends(items, index + 1, terms, middle)


def first_terms(node: Node) -> Tuple[FrozenSet[int], bool]:
    """Term ids a match can start with, and whether the node can match nothing."""
    if isinstance(node, Word):
        return frozenset((node.term_id,)), False
    if isinstance(node, Gap):
        return frozenset(), True
    if isinstance(node, Maybe):
        return first_terms(node.node)[0], True
    if isinstance(node, Alt):
        union: Set[int] = set()
        nullable = False
        for option in node.options:
            first, empty = first_terms(option)
            union |= first
            nullable = nullable or empty
        return frozenset(union), nullable
    found: Set[int] = set()
    for item in node.items:
        first, empty = first_terms(item)
        found |= first
        if not empty:
            return frozenset(found), False
    return frozenset(found), True


def required_terms(node: Node) -> Optional[FrozenSet[int]]:
    """Term ids of which every match must contain at least one (None: unknown)."""
    if isinstance(node, Word):
        return frozenset((node.term_id,))
    if isinstance(node, Seq):
        found = [r for r in map(required_terms, node.items) if r is not None]
        return min(found, key=len) if found else None
    if isinstance(node, Alt):
        union: Set[int] = set()
        for option in node.options:
            required = required_terms(option)
            if required is None:
                return None
            union |= required
        return frozenset(union)
    return None


@dataclass(frozen=True)
class Part:
    """A sequence of pattern items that must match somewhere in the message."""

    node: Seq
    first: FrozenSet[int] = field(init=False)
    needs: Tuple[FrozenSet[int], ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "first", first_terms(self.node)[0])
        needs = (required_terms(item) for item in self.node.items)
        object.__setattr__(self, "needs", tuple(n for n in needs if n is not None))

    def spans(self, terms: TokenTerms) -> Iterator[Tuple[int, int]]:
        """Yields (start, end) of the longest match at each start position."""
        first = self.first
        for start, found in enumerate(terms):
            if first.isdisjoint(found):
                continue
            ends = [e for e in _ends(self.node, terms, start) if e > start]
            if ends:
                yield start, max(ends)

    def matches(self, terms: TokenTerms) -> bool:
        """Whether the part matches anywhere in ``terms``."""
        first = self.first
        for start, found in enumerate(terms):
            if first.isdisjoint(found):
                continue
            if any(end > start for end in _ends(self.node, terms, start)):
                return True
        return False


@dataclass(frozen=True)
class Pattern:
    """A compiled pattern: one or more parts (``A && B``) that must all match."""

    category: str
    source: str
    parts: Tuple[Part, ...]
    needs: Tuple[FrozenSet[int], ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "needs", tuple(need for part in self.parts for need in part.needs))

    def could_match(self, present: Set[int]) -> bool:
        """Cheap check: is every required word of the pattern in the message?"""
        return all(not need.isdisjoint(present) for need in self.needs)

    def matches(self, terms: TokenTerms) -> bool:
        """Whether every part matches somewhere in ``terms``."""
        return all(part.matches(terms) for part in self.parts)

    def spans(self, terms: TokenTerms) -> Iterator[Tuple[int, int]]:
        """The words a one-part pattern (a guard) covers."""
        for part in self.parts:
            yield from part.spans(terms)


class _Index:
    """Patterns indexed by one of their required words, for a quick first pass."""

    def __init__(self, patterns: Sequence[Pattern]) -> None:
        self.patterns = list(patterns)
        self.by_term: Dict[int, List[int]] = {}
        for index, pattern in enumerate(self.patterns):
            for term_id in min(pattern.needs, key=len):
                self.by_term.setdefault(term_id, []).append(index)

    def first_match(self, present: Set[int], terms: TokenTerms) -> Optional[Pattern]:
        candidates: Set[int] = set()
        for term_id in present:
            candidates.update(self.by_term.get(term_id, ()))
        for index in sorted(candidates):
            pattern = self.patterns[index]
            if pattern.could_match(present) and pattern.matches(terms):
                return pattern
        return None


class SafetyMatcher:
    """A compiled patterns file. Build it with :func:`bot.nlp.safety.load.load_matcher`."""

    def __init__(
        self,
        normaliser: Normaliser,
        terms: List[Term],
        guards: List[Pattern],
        disclosures: List[Pattern],
        risks: List[Pattern],
        adults: List[Pattern],
        categories: List[Category],
    ) -> None:
        """Builds the lookup tables for a set of compiled patterns.

        Args:
            normaliser: Turns text into words.
            terms: Every distinct pattern word; a pattern refers to one by index.
            guards: "Not a crisis" patterns.
            disclosures: Clear-disclosure patterns, in priority order.
            risks: Risk patterns, in priority order.
            adults: Patterns that say an adult is talking.
            categories: The categories, in priority order.
        """
        self.normaliser = normaliser
        self.categories = tuple(categories)
        self._terms = terms
        self._guards = guards
        self._disclosures = _Index(disclosures)
        self._risks = _Index(risks)
        self._adults = _Index(adults)
        self._exact: Dict[str, List[int]] = {}
        # Prefix and typo-tolerant terms only match words with the same first
        # letter, so they are grouped by it.
        self._by_letter: Dict[str, List[int]] = {}
        for term_id, term in enumerate(terms):
            if term.prefix or term.fuzzy:
                self._by_letter.setdefault(term.text[:1], []).append(term_id)
            else:
                self._exact.setdefault(term.text, []).append(term_id)
        self._token_cache: Dict[str, FrozenSet[int]] = {}

    @property
    def pattern_count(self) -> int:
        """The number of disclosure and risk patterns."""
        return len(self._disclosures.patterns) + len(self._risks.patterns)

    def category(self, category_id: str) -> Optional[Category]:
        """The category with this id, if there is one."""
        return next((c for c in self.categories if c.id == category_id), None)

    def _token_terms(self, token: str) -> FrozenSet[int]:
        cached = self._token_cache.get(token)
        if cached is not None:
            return cached
        found = set(self._exact.get(token, ()))
        found.update(i for i in self._by_letter.get(token[:1], ()) if self._terms[i].matches(token))
        result = frozenset(found)
        if len(self._token_cache) >= _TOKEN_CACHE_SIZE:
            self._token_cache.clear()
        self._token_cache[token] = result
        return result

    def speaker(self, text: str) -> str:
        """``ADULT`` when an adult seems to be talking about a child, else ``CHILD``."""
        terms = [self._token_terms(w) for w in self.normaliser(text or "")]
        present: Set[int] = set()
        for found in terms:
            present.update(found)
        return ADULT if self._adults.first_match(present, terms) else CHILD

    def _masked(self, terms: TokenTerms) -> List[bool]:
        masked = [False] * len(terms)
        for guard in self._guards:
            for start, end in guard.spans(terms):
                masked[start:end] = [True] * (end - start)
        return masked

    def assess(self, text: str) -> Optional[SafetyVerdict]:
        """Checks one message.

        Args:
            text: The message as the user wrote it.

        Returns:
            What the safety net found, or ``None`` for an ordinary message.
        """
        words = self.normaliser(text or "")
        if not words:
            return None
        terms = [self._token_terms(w) for w in words]
        masked = self._masked(terms)
        # Guarded words are removed, not turned into a wall: in "my brother
        # beat me at fifa and then punched me" the guard takes "beat me at
        # fifa" and "my brother and then punched me" still matches.
        kept = [found for found, hidden in zip(terms, masked) if not hidden]
        present: Set[int] = set()
        for found in kept:
            present.update(found)
        level = DISCLOSURE
        pattern = self._disclosures.first_match(present, kept)
        if pattern is None:
            level = RISK
            pattern = self._risks.first_match(present, kept)
        if pattern is None:
            return None
        return SafetyVerdict(level=level, category=pattern.category, pattern=pattern.source, speaker=self.speaker(text))
