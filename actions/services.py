"""Finds services in the imported directory for a question: by town or district, postcode and age.

No Rasa here: the matching is plain Python over the store (``bot/directory/``) and the knowledge file's
``areas`` and ``services`` sections, so it can be used and tested on its own.

Privacy: a full postcode in a message is reduced at once to its outward code ("PR7 1AB" → "PR7").
Only the outward code is kept in a ``Query``, so only it can reach a slot; nothing here logs the text.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timezone
from typing import Any, Dict, List, Optional, Set, Tuple

from actions.knowledge import Knowledge, Stage
from bot.directory.model import Directory, StoredService, https_url
from bot.directory.store import get_directory

logger = logging.getLogger(__name__)

MAX_AGE_DAYS_ENV = "SERVICES_MAX_AGE_DAYS"
DEFAULT_MAX_AGE_DAYS = 30
OLDEST_CHILD = 25  # an "age" above this in a question is not a child's age
NO_UPPER_AGE = 200.0

NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_N = rf"(\d{{1,2}}|{'|'.join(NUMBER_WORDS)})"
_SEP = r"\s*-?\s*"
_BEING = "im|i am|hes|he is|shes|she is|theyre|they are|is|turned|turning|just"
AGE_IN_YEARS = [
    re.compile(rf"\b{_N}{_SEP}(?:years?|yrs?|yr|y){_SEP}(?:old|olds|o)\b"),  # 3 year old, 3-yr-old, 3 y o
    re.compile(rf"\b{_N}\s*(?:yo|y/o|yos)\b"),  # 14yo
    re.compile(rf"\baged?\s+{_N}\b"),  # aged 7, age 14
    re.compile(rf"\b{_N}\s+years?\b"),  # 14 years
    re.compile(rf"\b(?:{_BEING})\s+{_N}\b(?!\s*(?:min|hour|mile|pound|quid|%|pm|am))"),  # she's 9, im 13
]
AGE_IN_MONTHS = re.compile(rf"\b{_N}{_SEP}(?:months?|mths?|mnths?)\b")
AGE_IN_WEEKS = re.compile(rf"\b{_N}{_SEP}(?:weeks?|wks?){_SEP}old\b")
FULL_POSTCODE = re.compile(r"\b([a-z]{1,2}[0-9][a-z0-9]?)\s*([0-9][a-z]{2})\b")
OUTWARD_ONLY = re.compile(r"\b([a-z]{1,2})([0-9]{1,2})\b")
OUTWARD = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?$")


def _normalise(text: str) -> str:
    text = text.lower().replace("’", "'").replace("'", "").replace("-", " ")
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9/% ]+", " ", text)).strip()


@dataclass(frozen=True)
class Query:
    """What a person asked for: a place (district and the name they used), an outward code, an age or stage."""

    district: Optional[str] = None
    place: Optional[str] = None
    outward: Optional[str] = None
    age: Optional[int] = None
    stage: Optional[str] = None

    def has_place(self) -> bool:
        """Whether the question names a place or a postcode."""
        return bool(self.district or self.outward)

    def has_age(self) -> bool:
        """Whether the question gives an age or a stage."""
        return self.age is not None or self.stage is not None

    def place_label(self) -> str:
        """The place as an answer names it: "Chorley", "PR7" or "Chorley (PR7)"."""
        if self.place and self.outward:
            return f"{self.place} ({self.outward})"
        return self.place or self.outward or ""

    def to_slot(self) -> Dict[str, Any]:
        """The query as a slot value (no full postcode can be in it)."""
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_slot(cls, value: Any) -> Optional["Query"]:
        """A query read back from a slot; anything that does not fit is dropped."""
        if not isinstance(value, dict):
            return None
        text = {k: value.get(k) if isinstance(value.get(k), str) else None for k in ("district", "place", "stage")}
        outward = value.get("outward")
        age = value.get("age")
        return cls(
            district=text["district"],
            place=text["place"],
            outward=outward if isinstance(outward, str) and OUTWARD.match(outward) else None,
            age=age if isinstance(age, int) and 0 <= age <= OLDEST_CHILD else None,
            stage=text["stage"],
        )


@dataclass(frozen=True)
class Postcode:
    """The outward code found in a message, and whether the person wrote a full postcode."""

    outward: str
    was_full: bool


def find_postcode(text: str, postcode_areas: List[str]) -> Optional[Postcode]:
    """The outward code in a message: from a full postcode anywhere ("pr7 1ab" → PR7), or on its own.

    An outward code on its own ("PR7", "bb11") counts only for the areas listed in the knowledge file,
    and a one-letter area needs two digits ("L39"), so text-speak like "l8" is not read as a postcode.
    """
    lowered = text.lower()
    full = FULL_POSTCODE.search(lowered)
    if full:
        return Postcode(outward=full.group(1).upper(), was_full=True)
    areas = {area.upper() for area in postcode_areas}
    for match in OUTWARD_ONLY.finditer(lowered):
        area, digits = match.group(1).upper(), match.group(2)
        if area in areas and (len(area) == 2 or len(digits) == 2):
            return Postcode(outward=f"{area}{digits}", was_full=False)
    return None


def _number(word: str) -> int:
    return int(word) if word.isdigit() else NUMBER_WORDS[word]


def find_age(text: str) -> Optional[int]:
    """A child's age in years in a message ("my 3 year old", "14yo", "aged 7", "18 months" → 1), or None."""
    cleaned = _normalise(text)
    if AGE_IN_WEEKS.search(cleaned):
        return 0
    months = AGE_IN_MONTHS.search(cleaned)
    if months:
        return _number(months.group(1)) // 12
    for pattern in AGE_IN_YEARS:
        found = pattern.search(cleaned)
        if found:
            age = _number(found.group(1))
            if age <= OLDEST_CHILD:
                return age
    return None


def find_stage(text: str, stages: List[Stage]) -> Optional[Stage]:
    """The stage of childhood a message names ("toddler's", "teens", "primary school"), longest words first."""
    cleaned = f" {_normalise(text)} "
    best: Optional[Tuple[int, Stage]] = None
    for stage in stages:
        for word in stage.words:
            key = _normalise(word)
            if key and f" {key} " in cleaned and (best is None or len(key) > best[0]):
                best = (len(key), stage)
    return best[1] if best else None


def read_query(text: str, knowledge: Knowledge, entity: Optional[str] = None) -> Tuple[Query, Optional[Postcode]]:
    """Reads place, postcode, age and stage from a message (and the location entity, if the NLU found one)."""
    wording = knowledge.services
    postcode = find_postcode(text, wording.postcode_areas)
    # The postcode's letters must not be read as a place or an age: take it out of the text first.
    rest = FULL_POSTCODE.sub(" ", text.lower()) if postcode and postcode.was_full else text
    found = knowledge.find_area(rest) or (knowledge.find_area(entity) if entity else None)
    stage = find_stage(rest, wording.stages)
    age = find_age(rest)
    query = Query(
        district=found[0].district if found else None,
        place=found[1] if found else None,
        outward=postcode.outward if postcode else None,
        age=age,
        stage=stage.id if stage and age is None else None,
    )
    return query, postcode


def merge(new: Query, previous: Optional[Query]) -> Query:
    """Fills in what a follow-up leaves out from the question before it.

    "help for my toddler" → "Chorley": the toddler carries over (the place was asked for).
    "family support in Chorley" → "what about for teens?": the place carries over.
    """
    if previous is None or (new.has_place() and new.has_age()):
        return new
    if new.has_place():
        if previous.has_place():
            return new
        return replace(new, age=previous.age, stage=previous.stage)
    if new.has_age():
        return replace(new, district=previous.district, place=previous.place, outward=previous.outward)
    return previous


def age_range(query: Query, knowledge: Knowledge) -> Optional[Tuple[float, float]]:
    """The ages the person asked about, or None when they gave none."""
    if query.age is not None:
        return float(query.age), float(query.age)
    stage = stage_by_id(query.stage, knowledge)
    return (stage.min_age, stage.max_age) if stage else None


def stage_by_id(stage_id: Optional[str], knowledge: Knowledge) -> Optional[Stage]:
    """The stage with this id, or None."""
    return next((s for s in knowledge.services.stages if s.id == stage_id), None)


# ----- the index: where each service is, by the knowledge file's areas ------------------------------------


@dataclass
class Placed:
    """A service with the towns, districts and outward codes it is at or serves."""

    service: StoredService
    towns: Set[str]
    districts: Set[str]
    outwards: Set[str]
    countywide: bool


@dataclass
class Index:
    """Every service, placed; and which districts each outward code has addresses in (from the feed)."""

    placed: List[Placed]
    outward_districts: Dict[str, Set[str]]


_cache: List[Tuple[Directory, Knowledge, Index]] = []


def index(directory: Directory, knowledge: Knowledge) -> Index:
    """Places every service (kept until the store or the knowledge file is reloaded)."""
    if not (_cache and _cache[0][0] is directory and _cache[0][1] is knowledge):
        # The objects themselves are kept, not their ids: a reloaded store may reuse a freed id.
        _cache[:] = [(directory, knowledge, _build_index(directory, knowledge))]
    return _cache[0][2]


def _build_index(directory: Directory, knowledge: Knowledge) -> Index:
    countywide = {_normalise(name) for name in knowledge.services.countywide}
    placed: List[Placed] = []
    outward_districts: Dict[str, Set[str]] = {}
    for service in directory.services:
        item = Placed(service=service, towns=set(), districts=set(), outwards=set(), countywide=False)
        for address in service.addresses:
            # The town field first: a street name ("Preston Road") must not place a service in Chorley elsewhere.
            found = knowledge.find_area(address.town or "") or knowledge.find_area(" ".join(address.lines))
            if found:
                item.districts.add(found[0].district)
                item.towns.add(_normalise(found[1]))
            if address.outward:
                item.outwards.add(address.outward)
                if found:
                    outward_districts.setdefault(address.outward, set()).add(found[0].district)
        for area in service.service_areas:
            if _normalise(area) in countywide:
                item.countywide = True
                continue
            found = knowledge.find_area(area)
            if found:
                item.districts.add(found[0].district)
                item.towns.add(_normalise(found[1]))
        placed.append(item)
    return Index(placed=placed, outward_districts=outward_districts)


def _tier(item: Placed, query: Query, outward_districts: Dict[str, Set[str]]) -> int:
    if query.outward and query.outward in item.outwards:
        return 3
    if query.place and _normalise(query.place) in item.towns:
        return 3
    districts = {query.district} if query.district else set()
    if query.outward:
        districts |= outward_districts.get(query.outward, set())
    if districts & item.districts:
        return 2
    return 1 if item.countywide else 0


def _ages(service: StoredService) -> Tuple[float, float]:
    low = service.min_age if service.min_age is not None else 0.0
    high = service.max_age if service.max_age is not None else NO_UPPER_AGE
    return low, high


COUNTYWIDE_TIER = 1


def find_services(directory: Directory, knowledge: Knowledge, query: Query) -> List[StoredService]:
    """The services for a query, best first (see ``find_ranked``)."""
    return [service for _, service in find_ranked(directory, knowledge, query)]


def find_ranked(directory: Directory, knowledge: Knowledge, query: Query) -> List[Tuple[int, StoredService]]:
    """(tier, service) for a query, best first.

    Tiers: at the town or postcode (3), elsewhere in the district (2), for all of Lancashire (1).
    With an age or a stage, only services whose ages overlap it, the closest age range first within each
    tier. Never a service the store does not hold.
    """
    if not query.has_place():
        return []
    built = index(directory, knowledge)
    wanted = age_range(query, knowledge)
    ranked: List[Tuple[Tuple[int, float, str], Tuple[int, StoredService]]] = []
    for item in built.placed:
        tier = _tier(item, query, built.outward_districts)
        if tier == 0:
            continue
        low, high = _ages(item.service)
        if wanted and not (low <= wanted[1] and wanted[0] <= high):
            continue
        width = (high - low) if wanted else 0.0
        ranked.append(((-tier, width, item.service.name.lower()), (tier, item.service)))
    ranked.sort(key=lambda pair: pair[0])
    return [found for _, found in ranked]


# ----- freshness -------------------------------------------------------------------------------------------------


def max_age_days() -> int:
    """``SERVICES_MAX_AGE_DAYS`` (default 30): how old a copy may be before answers say it may be out of date."""
    raw = os.environ.get(MAX_AGE_DAYS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_AGE_DAYS
    try:
        return max(0, int(raw))
    except ValueError:
        logger.warning("%s=%r is not a whole number of days; using %d.", MAX_AGE_DAYS_ENV, raw, DEFAULT_MAX_AGE_DAYS)
        return DEFAULT_MAX_AGE_DAYS


def days_old(directory: Directory, today: Optional[date] = None) -> int:
    """How many days ago the directory was copied."""
    today = today or datetime.now(timezone.utc).date()
    imported = directory.imported_at
    imported_day = imported.astimezone(timezone.utc).date() if imported.tzinfo else imported.date()
    return max(0, (today - imported_day).days)


def import_date(directory: Directory) -> str:
    """The day the directory was copied, as people write it: "1 December 2026"."""
    imported = directory.imported_at
    return f"{imported.day} {imported:%B %Y}"


def current_directory() -> Optional[Directory]:
    """The imported directory, or None (nothing imported, or the store cannot be read: logged, never raised)."""
    try:
        return get_directory()
    except Exception:  # noqa: BLE001 - a broken store must leave the assistant answering as before
        logger.exception("The services store cannot be read; answering without it.")
        return None


# ----- what an answer shows: only checked feed data becomes a link --------------------------------------------

PAGE_SIZE = 3
TEL_HREF = re.compile(r"^tel:\+[0-9]{6,15}(;ext=[0-9]{1,6})?$")


def service_lines_and_links(service: StoredService, knowledge: Knowledge) -> Tuple[str, List[Dict[str, str]]]:
    """One service as a message (name, one line, phone, website) and its links for the widget.

    Links are built only from the store's checked values (a ``tel:`` link from a number checked with
    phonenumbers, an https address), checked again here, never from anything a person typed.
    """
    wording = knowledge.services
    phone = next((p for p in service.phones if TEL_HREF.match(p.href)), None)
    url = https_url(service.url)
    lines = [service.name]
    if service.summary:
        lines.append(service.summary)
    links: List[Dict[str, str]] = []
    if phone:
        lines.append(wording.phone.format(phone=phone.display))
        label = wording.call_label.format(name=service.name, phone=phone.display)
        links.append({"type": "tel", "href": phone.href, "text": phone.display, "label": label})
    if url:
        lines.append(wording.website.format(url=url))
        label = wording.website_label.format(name=service.name)
        links.append({"type": "url", "href": url, "text": wording.website_text, "label": label})
    if service.email and not (phone or url):
        lines.append(wording.email.format(email=service.email))
    return "\n".join(lines), links


def for_whom(query: Query, knowledge: Knowledge) -> str:
    """" for toddlers", " for a child aged 3", or ""."""
    wording = knowledge.services
    if query.age is not None:
        return wording.for_age.format(age=query.age)
    stage = stage_by_id(query.stage, knowledge)
    return wording.for_stage.format(name=stage.name) if stage else ""


def source_line(directory: Directory, knowledge: Knowledge, today: Optional[date] = None) -> str:
    """Where the services come from and when they were copied; and plainly, if that copy is old."""
    wording = knowledge.services
    line = wording.source.format(source=directory.source, date=import_date(directory))
    days = days_old(directory, today)
    if days > max_age_days():
        line = f"{line} {wording.stale.format(days=days)}"
    return line
