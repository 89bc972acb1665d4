"""Safety net: spots messages from someone who may not be safe.

This module has no Rasa imports, so it can be used (and tested) on its own.
The patterns live in a YAML file (``knowledge/safety_net.yml``) that a
non-programmer can edit; the file's own header explains the pattern syntax.

How a message is checked:

1. The text is normalised: lower case, accents and punctuation removed,
   apostrophes dropped (``don't`` -> ``dont``), letters repeated three or more
   times shortened (``sooo`` -> ``soo``), then text-speak expanded word by word
   (``im`` -> ``i am``, ``u`` -> ``you``, ``kms`` -> ``kill myself``). A digit
   standing between two words is read as a word (``scared 2 go`` ->
   ``scared to go``).
2. "Not a crisis" guards are matched first. The words a guard covers are
   removed, so no crisis pattern can use them ("what does to feel safe mean").
3. Crisis patterns are matched on the words that are left, category by
   category, in the order of the file. The first match wins.

Pattern words of ``fuzzy_min_length`` letters or more (5 by default) also match
a word one typing slip away (a letter missing, added, changed or two letters
swapped) that starts with the same letter.

Use :func:`assess` for the default patterns file, or :func:`load_matcher` to
compile a given file. Compiled matchers are cached per file.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, FrozenSet, Iterator, List, Optional, Set, Tuple, Union

import yaml

DEFAULT_PATTERNS_FILE = "knowledge/safety_net.yml"
"""The patterns file, relative to the working directory or the project root."""

_PROJECT_ROOT = Path(__file__).resolve().parents[3]
_DEFAULT_GAP_WORDS = 4
_DEFAULT_FUZZY_MIN_LENGTH = 5
_TOKEN_CACHE_SIZE = 20_000

_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc\u0060\u00b4]")
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_REPEATS = re.compile(r"([a-z])\1{2,}")
_PATTERN_TOKEN = re.compile(
    r"\s*(?:(?P<gap>\.\.\.(?P<gapsize>\d+)?)|(?P<punct>[()|?])"
    r"|(?P<ref>@[a-z_][a-z0-9_]*)|(?P<word>=?[a-z0-9']+\*?))"
)


class SafetyNetConfigError(ValueError):
    """The patterns file is missing or not valid. The message names the file."""


@dataclass(frozen=True)
class SafetyMatch:
    """A message that the safety net caught.

    Attributes:
        category: The category of the pattern that matched, e.g. ``self_harm``.
        pattern: The pattern as written in the patterns file.
    """

    category: str
    pattern: str


# ---------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------


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

    def raw_words(self, text: str) -> List[str]:
        """Splits text into lower-case words, before text-speak expansion.

        Args:
            text: Any text.

        Returns:
            The words, with punctuation, accents and apostrophes removed.
        """
        text = unicodedata.normalize("NFKD", text.lower())
        text = "".join(ch for ch in text if not unicodedata.combining(ch))
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
class _Term:
    """One pattern word: exact, typo-tolerant, or a word start (``hit*``)."""

    text: str
    prefix: bool
    fuzzy: bool

    def matches(self, token: str) -> bool:
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
class _Word:
    term_id: int


@dataclass(frozen=True)
class _Gap:
    most: int


@dataclass(frozen=True)
class _Optional:
    node: "_Node"


@dataclass(frozen=True)
class _Seq:
    items: Tuple["_Node", ...]


@dataclass(frozen=True)
class _Alt:
    options: Tuple["_Node", ...]


_Node = Union[_Word, _Gap, _Optional, _Seq, _Alt]
_TokenTerms = List[FrozenSet[int]]


def _ends(node: _Node, terms: _TokenTerms, pos: int) -> Iterator[int]:
    """Yields every position where ``node`` can end when it starts at ``pos``."""
    if isinstance(node, _Word):
        if pos < len(terms) and node.term_id in terms[pos]:
            yield pos + 1
    elif isinstance(node, _Seq):
        yield from _seq_ends(node.items, 0, terms, pos)
    elif isinstance(node, _Alt):
        for option in node.options:
            yield from _ends(option, terms, pos)
    elif isinstance(node, _Optional):
        yield from _ends(node.node, terms, pos)
        yield pos
    else:
        for skip in range(min(node.most, len(terms) - pos), -1, -1):
            yield pos + skip


def _seq_ends(items: Tuple[_Node, ...], index: int, terms: _TokenTerms, pos: int) -> Iterator[int]:
    if index == len(items):
        yield pos
        return
    for middle in _ends(items[index], terms, pos):
        yield from _seq_ends(items, index + 1, terms, middle)


def _first_terms(node: _Node) -> Tuple[FrozenSet[int], bool]:
    """Term ids a match can start with, and whether the node can match nothing."""
    if isinstance(node, _Word):
        return frozenset((node.term_id,)), False
    if isinstance(node, _Gap):
        return frozenset(), True
    if isinstance(node, _Optional):
        return _first_terms(node.node)[0], True
    if isinstance(node, _Alt):
        union: Set[int] = set()
        nullable = False
        for option in node.options:
            first, empty = _first_terms(option)
            union |= first
            nullable = nullable or empty
        return frozenset(union), nullable
    found: Set[int] = set()
    for item in node.items:
        first, empty = _first_terms(item)
        found |= first
        if not empty:
            return frozenset(found), False
    return frozenset(found), True


def _required_terms(node: _Node) -> Optional[FrozenSet[int]]:
    """Term ids of which every match must contain at least one (None: unknown)."""
    if isinstance(node, _Word):
        return frozenset((node.term_id,))
    if isinstance(node, _Seq):
        found = [r for r in map(_required_terms, node.items) if r is not None]
        return min(found, key=len) if found else None
    if isinstance(node, _Alt):
        union: Set[int] = set()
        for option in node.options:
            required = _required_terms(option)
            if required is None:
                return None
            union |= required
        return frozenset(union)
    return None


@dataclass(frozen=True)
class _Pattern:
    category: str
    source: str
    node: _Seq
    first: FrozenSet[int] = field(init=False)
    needs: Tuple[FrozenSet[int], ...] = field(init=False)

    def __post_init__(self) -> None:
        # A pattern always has a required word, so it never matches nothing.
        object.__setattr__(self, "first", _first_terms(self.node)[0])
        needs = (_required_terms(item) for item in self.node.items)
        object.__setattr__(self, "needs", tuple(n for n in needs if n is not None))

    def could_match(self, present: Set[int]) -> bool:
        """Cheap check: is every required part of the pattern in the message?"""
        return all(not need.isdisjoint(present) for need in self.needs)

    def _starts(self, terms: _TokenTerms) -> Iterator[int]:
        first = self.first
        return (i for i, found in enumerate(terms) if not first.isdisjoint(found))

    def spans(self, terms: _TokenTerms) -> Iterator[Tuple[int, int]]:
        """Yields (start, end) of the longest match at each start position."""
        for start in self._starts(terms):
            ends = [e for e in _ends(self.node, terms, start) if e > start]
            if ends:
                yield start, max(ends)

    def matches(self, terms: _TokenTerms) -> bool:
        """Tells whether the pattern matches anywhere in ``terms``."""
        for start in self._starts(terms):
            for end in _ends(self.node, terms, start):
                if end > start:
                    return True
        return False


class SafetyMatcher:
    """A compiled patterns file. Build it with :func:`load_matcher`."""

    def __init__(
        self,
        normaliser: Normaliser,
        terms: List[_Term],
        guards: List[_Pattern],
        patterns: List[_Pattern],
        categories: List[str],
    ) -> None:
        """Builds the lookup tables for a set of compiled patterns.

        Args:
            normaliser: Turns text into words.
            terms: Every distinct pattern word; a pattern refers to one by index.
            guards: "Not a crisis" patterns.
            patterns: Crisis patterns, in priority order.
            categories: The category names, in priority order.
        """
        self.normaliser = normaliser
        self.categories = tuple(categories)
        self._terms = terms
        self._guards = guards
        self._patterns = patterns
        self._exact: Dict[str, List[int]] = {}
        # Prefix and typo-tolerant terms only match words with the same first
        # letter, so they are grouped by it.
        self._by_letter: Dict[str, List[int]] = {}
        for term_id, term in enumerate(terms):
            if term.prefix or term.fuzzy:
                self._by_letter.setdefault(term.text[:1], []).append(term_id)
            else:
                self._exact.setdefault(term.text, []).append(term_id)
        self._by_term: Dict[int, List[int]] = {}
        for index, pattern in enumerate(patterns):
            for term_id in min(pattern.needs, key=len):
                self._by_term.setdefault(term_id, []).append(index)
        self._token_cache: Dict[str, FrozenSet[int]] = {}

    @property
    def pattern_count(self) -> int:
        """The number of crisis patterns."""
        return len(self._patterns)

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

    def assess(self, text: str) -> Optional[SafetyMatch]:
        """Checks one message.

        Args:
            text: The message as the user wrote it.

        Returns:
            The first crisis pattern that matched, or ``None``.
        """
        words = self.normaliser(text or "")
        if not words:
            return None
        terms = [self._token_terms(w) for w in words]
        masked = [False] * len(words)
        for guard in self._guards:
            for start, end in guard.spans(terms):
                masked[start:end] = [True] * (end - start)
        # Guarded words are removed, not turned into a wall: in "my brother
        # beat me at fifa and then punched me" the guard takes "beat me at
        # fifa" and "my brother and then punched me" still matches.
        kept = [found for found, hidden in zip(terms, masked) if not hidden]

        present: Set[int] = set()
        for found in kept:
            present.update(found)
        candidates: Set[int] = set()
        for term_id in present:
            candidates.update(self._by_term.get(term_id, ()))
        for index in sorted(candidates):
            pattern = self._patterns[index]
            if pattern.could_match(present) and pattern.matches(kept):
                return SafetyMatch(category=pattern.category, pattern=pattern.source)
        return None


# ---------------------------------------------------------------------------
# Loading and compiling the patterns file
# ---------------------------------------------------------------------------


class _Compiler:
    """Parses pattern strings into nodes, sharing one table of terms."""

    def __init__(
        self,
        path: Path,
        normaliser: Normaliser,
        word_lists: Dict[str, List[str]],
        gap_words: int,
        fuzzy_min_length: int,
    ) -> None:
        self.path = path
        self.normaliser = normaliser
        self.word_lists = word_lists
        self.gap_words = gap_words
        self.fuzzy_min_length = fuzzy_min_length
        self.terms: List[_Term] = []
        self._term_ids: Dict[_Term, int] = {}
        self._list_nodes: Dict[str, _Node] = {}
        self._expanding: List[str] = []

    def error(self, where: str, problem: str) -> SafetyNetConfigError:
        return SafetyNetConfigError(f"{self.path}: {where}: {problem}")

    def compile(self, source: str, where: str) -> _Seq:
        if not isinstance(source, str) or not source.strip():
            raise self.error(where, f"a pattern must be non-empty text, got {source!r}")
        tokens = self._tokenise(source, where)
        node, pos = self._parse_seq(tokens, 0, where, source)
        if pos != len(tokens):
            raise self.error(where, f"unexpected {tokens[pos][1]!r} in {source!r}")
        seq = node if isinstance(node, _Seq) else _Seq((node,))
        if isinstance(seq.items[0], _Gap) or isinstance(seq.items[-1], _Gap):
            raise self.error(where, f"'...' cannot start or end a pattern: {source!r}")
        if _required_terms(seq) is None:
            raise self.error(where, f"every word in {source!r} is optional; make one word required")
        return seq

    def _tokenise(self, source: str, where: str) -> List[Tuple[str, str]]:
        tokens: List[Tuple[str, str]] = []
        text = source.lower().strip()
        pos = 0
        while pos < len(text):
            found = _PATTERN_TOKEN.match(text, pos)
            if not found or found.end() == pos:
                raise self.error(where, f"cannot read {text[pos:]!r} in pattern {source!r}")
            pos = found.end()
            kind = found.lastgroup if found.lastgroup != "gapsize" else "gap"
            if kind is None:
                break
            tokens.append((kind, found.group(kind)))
        return tokens

    def _parse_seq(self, tokens: List[Tuple[str, str]], pos: int, where: str, source: str) -> Tuple[_Node, int]:
        items: List[_Node] = []
        while pos < len(tokens) and tokens[pos][1] not in (")", "|"):
            item, pos = self._parse_item(tokens, pos, where, source)
            items.append(item)
        if not items:
            raise self.error(where, f"empty words or choice in {source!r}")
        return (items[0] if len(items) == 1 else _Seq(tuple(items))), pos

    def _parse_item(self, tokens: List[Tuple[str, str]], pos: int, where: str, source: str) -> Tuple[_Node, int]:
        kind, value = tokens[pos]
        node: _Node
        if kind == "gap":
            size = value[3:]
            node = _Gap(int(size) if size else self.gap_words)
            pos += 1
        elif value == "(":
            options: List[_Node] = []
            pos += 1
            while True:
                option, pos = self._parse_seq(tokens, pos, where, source)
                options.append(option)
                if pos >= len(tokens):
                    raise self.error(where, f"missing ')' in {source!r}")
                if tokens[pos][1] == ")":
                    pos += 1
                    break
                pos += 1  # "|"
            node = options[0] if len(options) == 1 else _Alt(tuple(options))
        elif value == "?":
            raise self.error(where, f"'?' must follow a word or a ')' in {source!r}")
        elif kind == "ref":
            node = self._word_list(value[1:], where)
            pos += 1
        elif kind == "word":
            node = self._word(value, where, source)
            pos += 1
        else:
            raise self.error(where, f"unexpected {value!r} in {source!r}")
        if pos < len(tokens) and tokens[pos][1] == "?":
            if isinstance(node, _Gap):
                raise self.error(where, f"'...' cannot be optional in {source!r}")
            node = _Optional(node)
            pos += 1
        return node, pos

    def _word(self, value: str, where: str, source: str) -> _Node:
        exact = value.startswith("=")
        prefix = value.endswith("*")
        text = value.strip("=*")
        raw = self.normaliser.raw_words(text)
        if not raw:
            raise self.error(where, f"empty word in {source!r}")
        words = [text.replace("'", "")] if prefix else self.normaliser.expand(raw)
        nodes: List[_Node] = []
        for index, word in enumerate(words):
            is_prefix = prefix and index == len(words) - 1
            term = _Term(
                text=word,
                prefix=is_prefix,
                fuzzy=not exact and len(word) >= self.fuzzy_min_length,
            )
            term_id = self._term_ids.get(term)
            if term_id is None:
                term_id = len(self.terms)
                self.terms.append(term)
                self._term_ids[term] = term_id
            nodes.append(_Word(term_id))
        return nodes[0] if len(nodes) == 1 else _Seq(tuple(nodes))

    def _word_list(self, name: str, where: str) -> _Node:
        if name in self._list_nodes:
            return self._list_nodes[name]
        if name not in self.word_lists:
            raise self.error(where, f"unknown word list '@{name}'")
        if name in self._expanding:
            raise self.error(where, f"word list '@{name}' refers to itself")
        self._expanding.append(name)
        options = tuple(self.compile(entry, f"word_lists.{name}[{i}]") for i, entry in enumerate(self.word_lists[name]))
        self._expanding.pop()
        node: _Node = options[0] if len(options) == 1 else _Alt(options)
        self._list_nodes[name] = node
        return node


def _mapping(data: Dict[str, Any], key: str, path: Path) -> Dict[str, Any]:
    value = data.get(key, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SafetyNetConfigError(f"{path}: '{key}' must be a mapping")
    return value


def _string_list(value: Any, where: str, path: Path) -> List[str]:
    if not isinstance(value, list) or not value:
        raise SafetyNetConfigError(f"{path}: {where} must be a non-empty list")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise SafetyNetConfigError(f"{path}: {where} must hold only non-empty text, got {item!r}")
    return value


def _positive_int(settings: Dict[str, Any], key: str, default: int, path: Path) -> int:
    value = settings.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SafetyNetConfigError(f"{path}: settings.{key} must be a whole number > 0")
    return value


def compile_patterns(data: Any, path: Path) -> SafetyMatcher:
    """Compiles the parsed contents of a patterns file.

    Args:
        data: The parsed YAML document.
        path: The file it came from (used in error messages).

    Returns:
        The compiled matcher.

    Raises:
        SafetyNetConfigError: The data is not a valid patterns file.
    """
    if not isinstance(data, dict):
        raise SafetyNetConfigError(f"{path}: the file must be a YAML mapping")
    settings = _mapping(data, "settings", path)
    gap_words = _positive_int(settings, "gap_words", _DEFAULT_GAP_WORDS, path)
    fuzzy_min = _positive_int(settings, "fuzzy_min_length", _DEFAULT_FUZZY_MIN_LENGTH, path)

    base = Normaliser()
    text_speak: Dict[str, Tuple[str, ...]] = {}
    for word, replacement in _mapping(data, "text_speak", path).items():
        key = base.raw_words(str(word))
        value = base.raw_words(str(replacement)) if replacement is not None else []
        if len(key) != 1 or not value:
            raise SafetyNetConfigError(
                f"{path}: text_speak entry {word!r}: {replacement!r} must map one word to one or more words"
            )
        text_speak[key[0]] = tuple(value)
    between: Dict[str, str] = {}
    for word, replacement in _mapping(data, "between_words", path).items():
        value = base.raw_words(str(replacement)) if replacement is not None else []
        if len(value) != 1:
            raise SafetyNetConfigError(f"{path}: between_words entry {word!r} must map to one word")
        between[str(word).lower()] = value[0]
    normaliser = Normaliser(text_speak=text_speak, between_words=between)

    word_lists: Dict[str, List[str]] = {}
    for name, entries in _mapping(data, "word_lists", path).items():
        word_lists[str(name)] = _string_list(entries, f"word_lists.{name}", path)

    compiler = _Compiler(path, normaliser, word_lists, gap_words, fuzzy_min)
    raw_guards = data.get("guards")
    guard_sources = [] if raw_guards in (None, []) else _string_list(raw_guards, "guards", path)
    guards = [
        _Pattern("guard", source, compiler.compile(source, f"guards[{i}]")) for i, source in enumerate(guard_sources)
    ]

    raw_categories = data.get("categories")
    if not isinstance(raw_categories, list) or not raw_categories:
        raise SafetyNetConfigError(f"{path}: 'categories' must be a non-empty list")
    patterns: List[_Pattern] = []
    names: List[str] = []
    for i, category in enumerate(raw_categories):
        if not isinstance(category, dict) or not isinstance(category.get("name"), str):
            raise SafetyNetConfigError(f"{path}: categories[{i}] must be a mapping with a 'name'")
        name = category["name"]
        if name in names:
            raise SafetyNetConfigError(f"{path}: category '{name}' appears twice")
        names.append(name)
        sources = _string_list(category.get("patterns"), f"categories.{name}.patterns", path)
        for j, source in enumerate(sources):
            node = compiler.compile(source, f"categories.{name}.patterns[{j}]")
            patterns.append(_Pattern(name, source, node))
    return SafetyMatcher(normaliser, compiler.terms, guards, patterns, names)


def resolve_patterns_file(path: Union[str, Path, None] = None) -> Path:
    """Finds the patterns file.

    Args:
        path: A path; a relative one is looked up in the working directory
            first, then in the project root. ``None`` means the default file.

    Returns:
        The absolute path (which may not exist).
    """
    candidate = Path(path if path is not None else DEFAULT_PATTERNS_FILE)
    if candidate.is_absolute() or candidate.exists():
        return candidate.resolve()
    in_project = _PROJECT_ROOT / candidate
    return (in_project if in_project.exists() else candidate).resolve()


@functools.lru_cache(maxsize=8)
def _load_cached(path: Path, mtime_ns: int) -> SafetyMatcher:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SafetyNetConfigError(f"{path}: cannot read the safety net patterns file: {error}") from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SafetyNetConfigError(f"{path}: not valid YAML: {error}") from error
    return compile_patterns(data, path)


def load_matcher(path: Union[str, Path, None] = None) -> SafetyMatcher:
    """Loads and compiles a patterns file, once per version of the file.

    Args:
        path: The patterns file; ``None`` means the default file.

    Returns:
        The compiled matcher.

    Raises:
        SafetyNetConfigError: The file is missing or not valid. The message
            starts with the file's path.
    """
    resolved = resolve_patterns_file(path)
    try:
        mtime_ns = resolved.stat().st_mtime_ns
    except OSError as error:
        raise SafetyNetConfigError(f"{resolved}: cannot read the safety net patterns file: {error}") from error
    return _load_cached(resolved, mtime_ns)


def assess(text: str, patterns_file: Union[str, Path, None] = None) -> Optional[SafetyMatch]:
    """Checks whether a message may come from someone who is not safe.

    Args:
        text: The message as the user wrote it.
        patterns_file: The patterns file; ``None`` means the default file.

    Returns:
        The match (category and pattern), or ``None`` for an ordinary message.

    Raises:
        SafetyNetConfigError: The patterns file is missing or not valid.
    """
    return load_matcher(patterns_file).assess(text)
