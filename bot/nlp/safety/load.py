"""Reads and compiles the safety net's patterns file (``knowledge/safety_net.yml``).

The file's own header explains the pattern syntax for staff. Use
:func:`load_matcher` (compiled once per version of the file) or :func:`assess`.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import yaml

from bot.nlp.safety.match import (
    Alt,
    Category,
    Gap,
    Maybe,
    Node,
    Part,
    Pattern,
    SafetyMatcher,
    SafetyNetConfigError,
    SafetyVerdict,
    Seq,
    Term,
    Word,
    required_terms,
)
from bot.nlp.safety.normalise import Normaliser

DEFAULT_PATTERNS_FILE = "knowledge/safety_net.yml"
"""The patterns file, relative to the working directory or the project root."""

_PROJECT_ROOT = Path(__file__).resolve().parents[3]
_DEFAULT_GAP_WORDS = 4
_DEFAULT_FUZZY_MIN_LENGTH = 5
_ALL_OF = "&&"
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_PATTERN_TOKEN = re.compile(
    r"\s*(?:(?P<gap>\.\.\.(?P<gapsize>\d+)?)|(?P<punct>[()|?])"
    r"|(?P<ref>@[a-z_][a-z0-9_]*)|(?P<word>=?[a-z0-9']+\*?))"
)


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
        self.terms: List[Term] = []
        self._term_ids: Dict[Term, int] = {}
        self._list_nodes: Dict[str, Node] = {}
        self._expanding: List[str] = []

    def error(self, where: str, problem: str) -> SafetyNetConfigError:
        return SafetyNetConfigError(f"{self.path}: {where}: {problem}")

    def pattern(self, category: str, source: str, where: str) -> Pattern:
        """Compiles a pattern, which may be several parts joined by ``&&``."""
        if not isinstance(source, str) or not source.strip():
            raise self.error(where, f"a pattern must be non-empty text, got {source!r}")
        parts = tuple(Part(self.compile(piece, where, source)) for piece in source.split(_ALL_OF))
        return Pattern(category, source, parts)

    def compile(self, source: str, where: str, whole: Optional[str] = None) -> Seq:
        whole = whole or source
        if not source.strip():
            raise self.error(where, f"empty part in {whole!r}")
        tokens = self._tokenise(source, where)
        node, pos = self._parse_seq(tokens, 0, where, whole)
        if pos != len(tokens):
            raise self.error(where, f"unexpected {tokens[pos][1]!r} in {whole!r}")
        seq = node if isinstance(node, Seq) else Seq((node,))
        if isinstance(seq.items[0], Gap) or isinstance(seq.items[-1], Gap):
            raise self.error(where, f"'...' cannot start or end a pattern: {whole!r}")
        if required_terms(seq) is None:
            raise self.error(where, f"every word in {whole!r} is optional; make one word required")
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

    def _parse_seq(self, tokens: List[Tuple[str, str]], pos: int, where: str, source: str) -> Tuple[Node, int]:
        items: List[Node] = []
        while pos < len(tokens) and tokens[pos][1] not in (")", "|"):
            item, pos = self._parse_item(tokens, pos, where, source)
            items.append(item)
        if not items:
            raise self.error(where, f"empty words or choice in {source!r}")
        return (items[0] if len(items) == 1 else Seq(tuple(items))), pos

    def _parse_item(self, tokens: List[Tuple[str, str]], pos: int, where: str, source: str) -> Tuple[Node, int]:
        kind, value = tokens[pos]
        node: Node
        if kind == "gap":
            size = value[3:]
            node = Gap(int(size) if size else self.gap_words)
            pos += 1
        elif value == "(":
            options: List[Node] = []
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
            node = options[0] if len(options) == 1 else Alt(tuple(options))
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
            if isinstance(node, Gap):
                raise self.error(where, f"'...' cannot be optional in {source!r}")
            node = Maybe(node)
            pos += 1
        return node, pos

    def _word(self, value: str, where: str, source: str) -> Node:
        exact = value.startswith("=")
        prefix = value.endswith("*")
        text = value.strip("=*")
        raw = self.normaliser.raw_words(text)
        if not raw:
            raise self.error(where, f"empty word in {source!r}")
        words = [text.replace("'", "")] if prefix else self.normaliser.expand(raw)
        nodes: List[Node] = []
        for index, word in enumerate(words):
            is_prefix = prefix and index == len(words) - 1
            term = Term(text=word, prefix=is_prefix, fuzzy=not exact and len(word) >= self.fuzzy_min_length)
            term_id = self._term_ids.get(term)
            if term_id is None:
                term_id = len(self.terms)
                self.terms.append(term)
                self._term_ids[term] = term_id
            nodes.append(Word(term_id))
        return nodes[0] if len(nodes) == 1 else Seq(tuple(nodes))

    def _word_list(self, name: str, where: str) -> Node:
        if name in self._list_nodes:
            return self._list_nodes[name]
        if name not in self.word_lists:
            raise self.error(where, f"unknown word list '@{name}'")
        if name in self._expanding:
            raise self.error(where, f"word list '@{name}' refers to itself")
        self._expanding.append(name)
        options = tuple(self.compile(entry, f"word_lists.{name}[{i}]") for i, entry in enumerate(self.word_lists[name]))
        self._expanding.pop()
        node: Node = options[0] if len(options) == 1 else Alt(options)
        self._list_nodes[name] = node
        return node


def _mapping(data: Dict[str, Any], key: str, path: Path) -> Dict[str, Any]:
    value = data.get(key, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SafetyNetConfigError(f"{path}: '{key}' must be a mapping")
    return value


def _string_list(value: Any, where: str, path: Path, allow_empty: bool = False) -> List[str]:
    if value is None and allow_empty:
        return []
    if not isinstance(value, list) or (not value and not allow_empty):
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


def _normaliser(data: Dict[str, Any], path: Path) -> Normaliser:
    text_speak: Dict[str, Tuple[str, ...]] = {}
    for word, replacement in _mapping(data, "text_speak", path).items():
        key = Normaliser.raw_words(str(word))
        value = Normaliser.raw_words(str(replacement)) if replacement is not None else []
        if len(key) != 1 or not value:
            raise SafetyNetConfigError(
                f"{path}: text_speak entry {word!r}: {replacement!r} must map one word to one or more words"
            )
        text_speak[key[0]] = tuple(value)
    between: Dict[str, str] = {}
    for word, replacement in _mapping(data, "between_words", path).items():
        value = Normaliser.raw_words(str(replacement)) if replacement is not None else []
        if len(value) != 1:
            raise SafetyNetConfigError(f"{path}: between_words entry {word!r} must map to one word")
        between[str(word).lower()] = value[0]
    return Normaliser(text_speak=text_speak, between_words=between)


def _category(raw: Any, index: int, path: Path) -> Category:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not _ID.match(raw["id"]):
        raise SafetyNetConfigError(f"{path}: categories[{index}] must be a mapping with an 'id' like self_harm")
    name = raw["id"]
    about = raw.get("about")
    if not isinstance(about, str) or not about.strip():
        raise SafetyNetConfigError(f"{path}: category '{name}' needs 'about': what it covers, for staff to read")
    helplines = _string_list(raw.get("helplines"), f"categories.{name}.helplines", path, allow_empty=True)
    urgent = raw.get("urgent", False)
    if not isinstance(urgent, bool):
        raise SafetyNetConfigError(f"{path}: categories.{name}.urgent must be true or false")
    unknown = set(raw) - {"id", "about", "helplines", "urgent", "disclosure", "risk"}
    if unknown:
        raise SafetyNetConfigError(f"{path}: category '{name}' has unknown keys {sorted(unknown)}")
    return Category(id=name, about=about.strip(), helplines=tuple(helplines), urgent=urgent)


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
    normaliser = _normaliser(data, path)
    word_lists: Dict[str, List[str]] = {}
    for name, entries in _mapping(data, "word_lists", path).items():
        word_lists[str(name)] = _string_list(entries, f"word_lists.{name}", path)
    compiler = _Compiler(path, normaliser, word_lists, gap_words, fuzzy_min)

    def compiled(category: str, key: str, raw: Any, allow_empty: bool = True) -> List[Pattern]:
        sources = _string_list(raw, key, path, allow_empty=allow_empty)
        return [compiler.pattern(category, source, f"{key}[{i}]") for i, source in enumerate(sources)]

    guards = compiled("guard", "guards", data.get("guards"))
    adults = compiled("adult", "adult_speaker", data.get("adult_speaker"))
    raw_categories = data.get("categories")
    if not isinstance(raw_categories, list) or not raw_categories:
        raise SafetyNetConfigError(f"{path}: 'categories' must be a non-empty list")
    categories: List[Category] = []
    disclosures: List[Pattern] = []
    risks: List[Pattern] = []
    for i, raw in enumerate(raw_categories):
        category = _category(raw, i, path)
        if any(c.id == category.id for c in categories):
            raise SafetyNetConfigError(f"{path}: category '{category.id}' appears twice")
        categories.append(category)
        found = compiled(category.id, f"categories.{category.id}.disclosure", raw.get("disclosure"))
        risky = compiled(category.id, f"categories.{category.id}.risk", raw.get("risk"))
        if not found and not risky:
            raise SafetyNetConfigError(f"{path}: category '{category.id}' needs 'disclosure' or 'risk' patterns")
        disclosures.extend(found)
        risks.extend(risky)
    return SafetyMatcher(normaliser, compiler.terms, guards, disclosures, risks, adults, categories)


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


def assess(text: str, patterns_file: Union[str, Path, None] = None) -> Optional[SafetyVerdict]:
    """Checks whether a message may come from someone who is not safe.

    Args:
        text: The message as the user wrote it.
        patterns_file: The patterns file; ``None`` means the default file.

    Returns:
        The verdict (level, category, pattern, speaker), or ``None`` for an ordinary message.

    Raises:
        SafetyNetConfigError: The patterns file is missing or not valid.
    """
    return load_matcher(patterns_file).assess(text)
