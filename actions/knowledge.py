"""The knowledge file: its schema, its loader and the lookups the actions make.

Every fact the assistant tells lives in ``knowledge/lancashire.yml``. This module
validates that file against a schema when it loads, and reloads it when it changes
on disk, so an edit shows in the answers within seconds without a restart.

Nothing here imports Rasa: the loader can be used (and tested) on its own, and
``python -m actions.knowledge [FILE]`` checks a file without starting anything.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

import yaml
from pydantic import BaseModel, Extra, ValidationError, confloat, constr, root_validator, validator

logger = logging.getLogger(__name__)

DEFAULT_KNOWLEDGE_FILE = Path(__file__).resolve().parent.parent / "knowledge" / "lancashire.yml"
KNOWLEDGE_FILE_ENV = "KNOWLEDGE_FILE"
OUTCOME_LIST_PLACEHOLDER = "{outcome_list}"

if TYPE_CHECKING:  # the constrained types are plain strings to a type checker
    NonEmpty = str
    Identifier = str
    Group = str
    PhoneDigits = str
    Version = str
    PostcodeArea = str
    Age = float
else:
    NonEmpty = constr(strip_whitespace=True, min_length=1)
    Identifier = constr(regex=r"^[a-z][a-z0-9_]*$")
    Group = constr(regex=r"^(plan|trust|figures|about)$")
    PhoneDigits = constr(regex=r"^[0-9 ]+$")
    Version = constr(regex=r"^1$")
    PostcodeArea = constr(regex=r"^[A-Z]{1,2}$")
    Age = confloat(ge=0, le=130)


class KnowledgeError(Exception):
    """The knowledge file is missing, is not YAML, or does not fit the schema."""


class _Strict(BaseModel):
    """Base model: unknown fields are errors, so a typo in a field name fails fast."""

    class Config:
        extra = Extra.forbid
        anystr_strip_whitespace = True


class Page(_Strict):
    """A page of the Trust's website that facts are taken from."""

    seed: NonEmpty
    title: NonEmpty


class Source(_Strict):
    """Where a fact comes from: a page and the sentence it rests on, word for word."""

    page: NonEmpty
    quote: NonEmpty


DETAIL_KINDS = ("how_often", "who_for", "who_gives", "what_for", "in_kind", "when", "how_many", "why")
"""The kinds of follow-up question about a detail of an answer."""
MAX_LINES = 3
"""At most this many messages per answer; the rest goes under ``more`` ("Tell me more")."""


class Answer(_Strict):
    """Lines the assistant says, one message each, and their source (or sources)."""

    answer: List[NonEmpty]
    source: Optional[Source] = None
    sources: List[Source] = []

    @validator("answer")
    def _not_empty(cls, value: List[str]) -> List[str]:  # noqa: N805
        if not value:
            raise ValueError("must have at least one line")
        if len(value) > MAX_LINES:
            raise ValueError(f"at most {MAX_LINES} lines; put the rest under 'more'")
        return value

    @root_validator(skip_on_failure=True)
    def _has_a_source(cls, values: Dict[str, Any]) -> Dict[str, Any]:  # noqa: N805
        if (values.get("source") is None) == (not values.get("sources")):
            raise ValueError("needs either 'source' or 'sources' (a list), not both")
        return values

    def all_sources(self) -> List[Source]:
        """Every source the answer rests on."""
        return [self.source] if self.source is not None else list(self.sources)


class Topic(Answer):
    """One thing people ask about, e.g. the Plan or a figure."""

    title: NonEmpty
    group: Group
    button: NonEmpty
    payload: Optional[NonEmpty] = None
    figure: Optional[NonEmpty] = None
    narrower: List[Identifier] = []
    more: List[NonEmpty] = []
    keywords: List[NonEmpty] = []
    related: List[Identifier] = []
    details: Dict[str, Answer] = {}

    @validator("details")
    def _known_kinds(cls, value: Dict[str, Answer]) -> Dict[str, Answer]:  # noqa: N805
        unknown = sorted(set(value) - set(DETAIL_KINDS))
        if unknown:
            raise ValueError(f"unknown detail kinds {unknown}; known: {list(DETAIL_KINDS)}")
        return value


class Currency(Answer):
    """The note that the Plan is from 2014-17 and the website was under review."""

    short: NonEmpty


class DetailKind(_Strict):
    """How a kind of follow-up question is put into words, and the words that show it is asked."""

    what: NonEmpty
    button: NonEmpty
    cues: List[NonEmpty] = []


class NextSteps(_Strict):
    """The labels of the buttons that end an answer, and of the fallback's offer."""

    source: NonEmpty
    more: NonEmpty
    something_else: NonEmpty
    offer: NonEmpty
    offer_yes: NonEmpty
    offer_no: NonEmpty
    more_cues: List[NonEmpty] = []
    source_cues: List[NonEmpty] = []


class Human(_Strict):
    """What the assistant says when someone asks for a real person."""

    button: NonEmpty
    answer: List[NonEmpty]


class Outcome(_Strict):
    """One of the Plan's key outcomes."""

    id: Identifier
    name: NonEmpty
    aim: NonEmpty
    names: List[NonEmpty]


class Contact(_Strict):
    """A local contact. Every field a person reads must come from a source."""

    name: NonEmpty
    phone: Optional[NonEmpty] = None
    email: Optional[NonEmpty] = None
    url: Optional[NonEmpty] = None
    address: Optional[NonEmpty] = None
    opening_hours: Optional[NonEmpty] = None
    source: Source


class Service(_Strict):
    """A local service, e.g. a family hub or a young people's centre."""

    name: NonEmpty
    description: NonEmpty
    contact: Optional[Contact] = None
    source: Source


class Area(_Strict):
    """A Lancashire district, the towns in it, and (later) its local contacts and services."""

    district: NonEmpty
    towns: List[NonEmpty] = []
    nicknames: List[NonEmpty] = []
    contacts: List[Contact] = []
    services: List[Service] = []


class LocalHelp(_Strict):
    """The county-wide answer about early help, and what to say when there is no local entry."""

    button: NonEmpty
    title: NonEmpty
    related: List[Identifier] = []
    answer: List[NonEmpty]
    no_local_details: NonEmpty
    no_place: NonEmpty
    source: Source


class Stage(_Strict):
    """A stage of childhood a person may name ("toddler"), and the ages it covers, in years."""

    id: Identifier
    name: NonEmpty
    min_age: Age
    max_age: Age
    words: List[NonEmpty]

    @root_validator(skip_on_failure=True)
    def _ages_in_order(cls, values: Dict[str, Any]) -> Dict[str, Any]:  # noqa: N805
        if values["min_age"] > values["max_age"]:
            raise ValueError("min_age must not be above max_age")
        return values


# The placeholders each wording of the services answer may use (filled in by actions/local_help.py).
SERVICES_PLACEHOLDERS: Dict[str, Tuple[str, ...]] = {
    "found": ("count", "place", "for_whom"),
    "found_one": ("place", "for_whom"),
    "found_countywide": ("place", "for_whom"),
    "more_found": ("place", "for_whom"),
    "for_stage": ("name",),
    "for_age": ("age",),
    "source": ("source", "date"),
    "stale": ("days",),
    "more_left": ("left",),
    "no_more": ("place",),
    "none_found": ("place", "for_whom"),
    "postcode_note": ("outward",),
    "phone": ("phone",),
    "website": ("url",),
    "email": ("email",),
    "call_label": ("name", "phone"),
    "website_label": ("name",),
}


class ServicesWording(_Strict):
    """How the assistant talks about services from an imported directory, and how it reads ages.

    The services themselves are never here: they come only from the imported feed (bot/directory/).
    """

    stages: List[Stage]
    postcode_areas: List[PostcodeArea]
    countywide: List[NonEmpty]
    found: NonEmpty
    found_one: NonEmpty
    found_countywide: NonEmpty
    more_found: NonEmpty
    for_stage: str
    for_age: str
    source: NonEmpty
    stale: NonEmpty
    more_left: NonEmpty
    more_button: NonEmpty
    no_more: NonEmpty
    none_found: NonEmpty
    no_place: NonEmpty
    postcode_note: NonEmpty
    phone: NonEmpty
    website: NonEmpty
    email: NonEmpty
    website_text: NonEmpty
    call_label: NonEmpty
    website_label: NonEmpty

    class Config:
        """Keeps the leading space of " for toddlers"."""

        anystr_strip_whitespace = False

    @root_validator(skip_on_failure=True)
    def _placeholders(cls, values: Dict[str, Any]) -> Dict[str, Any]:  # noqa: N805
        for key, names in SERVICES_PLACEHOLDERS.items():
            try:
                values[key].format(**{name: "x" for name in names})
            except (KeyError, IndexError, ValueError) as error:
                allowed = ", ".join(f"{{{n}}}" for n in names)
                raise ValueError(f"services → {key}: may only use {allowed} ({error})") from error
        return values


class Helpline(_Strict):
    """A national helpline: the one kind of fact that is not from the Trust's website."""

    id: Identifier
    name: NonEmpty
    number: PhoneDigits
    national: bool
    message: NonEmpty

    @validator("national")
    def _must_be_national(cls, value: bool) -> bool:  # noqa: N805
        if value is not True:
            raise ValueError("helplines must be national services (national: true)")
        return value

    @root_validator(skip_on_failure=True)
    def _number_in_message(cls, values: Dict[str, Any]) -> Dict[str, Any]:  # noqa: N805
        if values["number"] not in values["message"]:
            raise ValueError("the message must give the helpline's number")
        return values


class Knowledge(_Strict):
    """The whole knowledge file."""

    schema_version: Version
    sources: Dict[str, Page]
    currency: Currency
    detail_kinds: Dict[str, DetailKind]
    follow_up_words: List[NonEmpty]
    no_detail: List[NonEmpty]
    next_steps: NextSteps
    topics: Dict[str, Topic]
    outcomes: List[Outcome]
    outcome_answer: List[NonEmpty]
    outcome_source: Source
    local_help: LocalHelp
    areas: List[Area]
    signposting: Dict[str, List[NonEmpty]]
    human: Human
    call_label: NonEmpty
    helplines: List[Helpline]
    services: ServicesWording

    @validator("schema_version", pre=True)
    def _version_as_text(cls, value: Any) -> str:  # noqa: N805
        return str(value)

    @root_validator(skip_on_failure=True)
    def _sources_exist(cls, values: Dict[str, Any]) -> Dict[str, Any]:  # noqa: N805
        pages = values["sources"]
        for where, source in _all_sources(values):
            if source.page not in pages:
                raise ValueError(
                    f"{where}: source page '{source.page}' is not one of {sorted(pages)} (declare it under 'sources')"
                )
        return values

    @root_validator(skip_on_failure=True)
    def _signposting_names_helplines(cls, values: Dict[str, Any]) -> Dict[str, Any]:  # noqa: N805
        known = {helpline.id for helpline in values["helplines"]}
        missing = {"child", "adult"} - set(values["signposting"])
        if missing:
            raise ValueError(f"signposting: needs the lists {sorted(missing)}")
        for kind, ids in values["signposting"].items():
            unknown = [i for i in ids if i not in known]
            if unknown:
                raise ValueError(f"signposting → {kind}: unknown helpline ids {unknown}; known: {sorted(known)}")
        return values

    @root_validator(skip_on_failure=True)
    def _topics_link_up(cls, values: Dict[str, Any]) -> Dict[str, Any]:  # noqa: N805
        topics = values["topics"]
        for topic_id, topic in topics.items():
            unknown = [r for r in topic.related if r not in topics and r != "local_help"]
            if unknown:
                raise ValueError(f"topics → {topic_id} → related: unknown topics {unknown}")
        if set(values["detail_kinds"]) != set(DETAIL_KINDS):
            raise ValueError(f"detail_kinds: must name exactly {list(DETAIL_KINDS)}")
        return values

    @root_validator(skip_on_failure=True)
    def _outcome_answer_fills(cls, values: Dict[str, Any]) -> Dict[str, Any]:  # noqa: N805
        for line in values["outcome_answer"]:
            try:
                line.format(name="", number=0, aim="")
            except (KeyError, IndexError, ValueError) as error:
                raise ValueError(
                    f"outcome_answer: '{line}' may only use {{name}}, {{number}} and {{aim}} ({error})"
                ) from error
        return values

    # ----- lookups -----------------------------------------------------------------

    def topic(self, topic_id: str) -> Optional[Topic]:
        """Returns the topic with this id, or None."""
        return self.topics.get(topic_id)

    def answer_lines(self, answer: Union[Answer, "LocalHelp"]) -> List[str]:
        """Returns an answer's lines with placeholders filled in."""
        return [self._fill(line) for line in answer.answer]

    def sources_of(self, answered: str) -> List[Source]:
        """Returns the sources of an answer recorded in the ``last_topic`` slot (none if unknown).

        Args:
            answered: a topic id, ``detail:<topic>:<kind>``, ``outcome:<id>``, ``area:<district>``,
                ``local_help`` or ``currency``.
        """
        kind, _, key = answered.partition(":")
        if kind == "detail":
            topic_id, _, detail = key.partition(":")
            topic = self.topic(topic_id)
            if topic is None:
                return []
            found = topic.details.get(detail)
            if found is not None:
                return found.all_sources()
            parts = [self.topic(p) for p in topic.narrower]
            pieces = [
                s for p in parts if p is not None and detail in p.details for s in p.details[detail].all_sources()
            ]
            return pieces or topic.all_sources()
        if kind == "outcome":
            return [self.outcome_source]
        if kind == "area":
            area = next((a for a in self.areas if a.district == key), None)
            entries = [*area.contacts, *area.services] if area else []
            return [e.source for e in entries] or [self.local_help.source]  # type: ignore[attr-defined]
        if answered == "local_help":
            return [self.local_help.source]
        if answered == "currency":
            return self.currency.all_sources()
        topic = self.topic(answered)
        return topic.all_sources() if topic else []

    def source_text(self, source: Source) -> Tuple[str, str]:
        """Returns (page title, quote) for a source."""
        return self.sources[source.page].title, source.quote

    def outcome_list(self) -> str:
        """Returns the outcomes as a numbered list, one per line."""
        return "\n".join(f"{i}. {o.name}" for i, o in enumerate(self.outcomes, start=1))

    def outcome_by_number(self, number: int) -> Optional[Outcome]:
        """Returns the outcome at this 1-based position, or None."""
        if 1 <= number <= len(self.outcomes):
            return self.outcomes[number - 1]
        return None

    def find_outcome(self, text: str) -> Optional[Tuple[int, Outcome]]:
        """Finds the outcome a phrase names ("being healthy"), with its 1-based number."""
        wanted = _normalise(text)
        best: Optional[Tuple[int, int, Outcome]] = None
        for number, outcome in enumerate(self.outcomes, start=1):
            for name in [outcome.name, *outcome.names]:
                key = _normalise(name)
                if key and re.search(rf"\b{re.escape(key)}\b", wanted):
                    if best is None or len(key) > best[0]:
                        best = (len(key), number, outcome)
        return (best[1], best[2]) if best else None

    def find_area(self, text: str) -> Optional[Tuple[Area, str]]:
        """Finds the area a place name belongs to; returns (area, the name as written here)."""
        wanted = _normalise(text)
        best: Optional[Tuple[int, Area, str]] = None
        for area in self.areas:
            for name in [area.district, *area.towns, *area.nicknames]:
                key = _normalise(name)
                if key and re.search(rf"\b{re.escape(key)}\b", wanted):
                    if best is None or len(key) > best[0]:
                        shown = name if name not in area.nicknames else area.towns[0]
                        best = (len(key), area, shown)
        return (best[1], best[2]) if best else None

    def outcome_lines(self, number: int, outcome: Outcome) -> List[str]:
        """Returns the explanation of one outcome."""
        return [line.format(name=outcome.name, number=number, aim=outcome.aim) for line in self.outcome_answer]

    def helplines_for(self, speaker: str, extra: Sequence[str] = (), urgent: bool = False) -> List[Helpline]:
        """Returns the national helplines to give, in order.

        Args:
            speaker: ``child`` or ``adult`` (who seems to be talking); anything else counts as child.
            extra: helpline ids a kind of danger adds (unknown ids are skipped).
            urgent: put 999 first whoever is talking.
        """
        ids = list(self.signposting.get(speaker) or self.signposting["child"])
        ids += [i for i in extra if i not in ids]
        if urgent and "emergency" in ids:
            ids.remove("emergency")
            ids.insert(0, "emergency")
        by_id = {helpline.id: helpline for helpline in self.helplines}
        return [by_id[i] for i in ids if i in by_id]

    @property
    def local_help_title(self) -> str:
        """What local early help is called in an offer."""
        return self.local_help.title

    @property
    def human_button(self) -> str:
        """The label of the "Talk to a person" button."""
        return self.human.button

    def related_topics(self, topic_id: str) -> List[str]:
        """The topic, the topics it is part of, its parts, and its sibling parts."""
        parents = [t for t, topic in self.topics.items() if topic_id in topic.narrower]
        topic = self.topic(topic_id)
        family = [topic_id, *parents, *(topic.narrower if topic else [])]
        for parent in parents:
            family += self.topics[parent].narrower
        return list(dict.fromkeys(family))

    def detail_in_text(self, text: str, min_words: int = 1) -> Optional[str]:
        """The kind of detail a short follow-up asks for, by its cue words (the longest cue wins).

        Args:
            text: the message.
            min_words: only cues of at least this many words ("who is it for", not "ages").
        """
        wanted = f" {_normalise(text)} "
        best: Optional[Tuple[int, str]] = None
        for kind, wording in self.detail_kinds.items():
            for cue in wording.cues:
                key = _normalise(cue)
                if (
                    key
                    and len(key.split()) >= min_words
                    and f" {key} " in wanted
                    and (best is None or len(key) > best[0])
                ):
                    best = (len(key), kind)
        return best[1] if best else None

    def asks_for_more(self, text: str) -> bool:
        """Whether a message asks for more about the last answer ("tell me more", "elaborate")."""
        wanted = f" {_normalise(text)} "
        return any(f" {_normalise(cue)} " in wanted for cue in self.next_steps.more_cues)

    def asks_for_source(self, text: str) -> bool:
        """Whether a message asks where the last answer comes from ("basis of the estimate?")."""
        wanted = f" {_normalise(text)} "
        return any(f" {_normalise(cue)} " in wanted for cue in self.next_steps.source_cues)

    def refers_back(self, text: str) -> bool:
        """Whether a message has a word that points back to the last answer ("them", "it")."""
        words = set(_normalise(text).split())
        return any(word in words for word in self.follow_up_words)

    def helpline(self, helpline_id: str) -> Optional[Helpline]:
        """Returns a helpline by id."""
        return next((h for h in self.helplines if h.id == helpline_id), None)

    def call_name(self, helpline: Helpline) -> str:
        """The accessible name of a tap-to-call link: "Call Childline, 0800 1111"."""
        return self.call_label.format(name=helpline.name, number=helpline.number)

    def topic_in_text(
        self, text: str, among: Optional[Sequence[str]] = None, strong_only: bool = False
    ) -> Optional[str]:
        """The topic a message names by one of its keywords (the longest keyword wins), if any.

        Args:
            text: the message.
            among: only these topics (default: every topic).
            strong_only: only keywords that name a topic on their own: several words, a figure, or
                a long word ("district councils", "180,000", "coordinators"; not "made" or "five").
        """
        wanted = f" {_normalise(text)} "
        best: Optional[Tuple[int, str]] = None
        for topic_id, topic in self.topics.items():
            if among is not None and topic_id not in among:
                continue
            for keyword in topic.keywords:
                key = _normalise(keyword)
                strong = " " in key or any(ch.isdigit() for ch in key) or len(key) >= 7
                if strong_only and not strong:
                    continue
                if key and f" {key} " in wanted and (best is None or len(key) > best[0]):
                    best = (len(key), topic_id)
        return best[1] if best else None

    def _fill(self, line: str) -> str:
        return line.replace(OUTCOME_LIST_PLACEHOLDER, self.outcome_list())


def _all_sources(values: Dict[str, Any]) -> List[Tuple[str, Source]]:
    found: List[Tuple[str, Any]] = [("currency", s) for s in values["currency"].all_sources()]
    found += [("outcome_source", values["outcome_source"]), ("local_help", values["local_help"].source)]
    for topic_id, topic in values["topics"].items():
        found += [(f"topics → {topic_id}", s) for s in topic.all_sources()]
        for kind, detail in topic.details.items():
            found += [(f"topics → {topic_id} → details → {kind}", s) for s in detail.all_sources()]
    for area in values["areas"]:
        for contact in area.contacts:
            found.append((f"areas → {area.district} → contacts", contact.source))
        for service in area.services:
            found.append((f"areas → {area.district} → services", service.source))
    return found


def _normalise(text: str) -> str:
    text = text.lower().replace("-", " ").replace("'", "").replace("’", "")
    return re.sub(r"[^a-z0-9 ]+", " ", re.sub(r"\s+", " ", text)).strip()


def _describe(errors: Any) -> str:
    lines = []
    for error in errors:
        where = " → ".join(str(part) for part in error["loc"] if part != "__root__")
        lines.append(f"  {where or '(top level)'}: {error['msg']}")
    return "\n".join(lines)


def load_knowledge(path: Path) -> Knowledge:
    """Reads and validates a knowledge file.

    Args:
        path: the YAML file.

    Returns:
        The validated knowledge.

    Raises:
        KnowledgeError: naming the file, and for a schema error the entry and field.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise KnowledgeError(f"{path}: cannot read the knowledge file ({error.strerror})") from error
    except yaml.YAMLError as error:
        raise KnowledgeError(f"{path}: is not valid YAML: {error}") from error
    if not isinstance(raw, dict):
        raise KnowledgeError(f"{path}: must be a YAML mapping with 'topics', 'outcomes', ...")
    try:
        return Knowledge.parse_obj(raw)
    except ValidationError as error:
        raise KnowledgeError(f"{path}: does not fit the schema:\n{_describe(error.errors())}") from error


class KnowledgeBase:
    """Holds the knowledge in memory and reloads it when the file changes.

    A reload is checked at most every ``check_every`` seconds (a ``stat`` call). If
    the edited file is broken, the last good version stays in use and the error is
    logged, so a typo never takes the assistant down.
    """

    def __init__(self, path: Path, check_every: float = 1.0) -> None:
        """Creates the holder; nothing is read until the first ``get``.

        Args:
            path: the knowledge file.
            check_every: the least number of seconds between two checks for a change.
        """
        self.path = path
        self.check_every = check_every
        self._knowledge: Optional[Knowledge] = None
        self._stamp: Optional[Tuple[float, int]] = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def get(self, now: Optional[float] = None) -> Knowledge:
        """Returns the current knowledge, reloading the file if it changed.

        Args:
            now: the current monotonic time (for tests); defaults to ``time.monotonic()``.

        Raises:
            KnowledgeError: if no valid version of the file has ever been loaded.
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._knowledge is not None and now - self._checked_at < self.check_every:
                return self._knowledge
            self._checked_at = now
            try:
                stat = self.path.stat()
                stamp = (stat.st_mtime, stat.st_size)
            except OSError as error:
                if self._knowledge is None:
                    raise KnowledgeError(f"{self.path}: cannot read the knowledge file ({error.strerror})") from error
                logger.error("Knowledge file %s cannot be read; keeping the last good version.", self.path)
                return self._knowledge
            if stamp != self._stamp or self._knowledge is None:
                try:
                    self._knowledge = load_knowledge(self.path)
                    logger.info("Loaded knowledge file %s.", self.path)
                except KnowledgeError as error:
                    if self._knowledge is None:
                        raise
                    logger.error("%s\nKeeping the last good version of the knowledge.", error)
                self._stamp = stamp
            return self._knowledge


_default: Optional[KnowledgeBase] = None


def knowledge_path() -> Path:
    """Returns the knowledge file in use: ``$KNOWLEDGE_FILE`` or the project's own."""
    configured = os.environ.get(KNOWLEDGE_FILE_ENV)
    return Path(configured) if configured else DEFAULT_KNOWLEDGE_FILE


def get_knowledge() -> Knowledge:
    """Returns the knowledge, loading it on first use and reloading it when it changes."""
    global _default
    path = knowledge_path()
    if _default is None or _default.path != path:
        _default = KnowledgeBase(path)
    return _default.get()


def main(argv: List[str]) -> int:
    """Validates a knowledge file: ``python -m actions.knowledge [FILE]``."""
    path = Path(argv[0]) if argv else knowledge_path()
    try:
        knowledge = load_knowledge(path)
    except KnowledgeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"{path}: OK ({len(knowledge.topics)} topics, {len(knowledge.outcomes)} outcomes, "
        f"{len(knowledge.areas)} areas, {len(knowledge.helplines)} national helplines)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
