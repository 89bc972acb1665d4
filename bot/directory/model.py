"""Open Referral UK service records: what a feed sends, and what the assistant keeps.

The feed side follows the **Open Referral UK profile of HSDS 3.0** (the Human Services Data
Specification, openreferral/specification, branch 3.0: ``schema/compiled/service.json``, with the
UK profile's changes from OpenReferralUK/uk-profile). Only the fields the assistant relies on are
declared; every other field is ignored, so a feed that adds fields still imports. The spec's
required fields for a service are ``id``, ``name`` and ``status``; a phone requires ``number``.

Phones: HSDS 3.0 allows them on the service, its contacts, each ``service_at_location`` and its
contacts, each location and its contacts, and the organisation. The UK profile removes some of those
places (the service's own ``phones`` in one version, contacts' phones in another), so every place is
read, in that order, and the organisation's phones are used only when no other place has one.

The kept record (``StoredService``) holds only what an answer needs: name, description, organisation,
phones (checked with ``phonenumbers``), email, https website, addresses with postcode, service areas,
ages, taxonomy terms, schedules as text and the feed's last-updated date.
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlsplit

import phonenumbers
from pydantic import BaseModel, Extra, ValidationError, root_validator, validator
from pydantic.fields import SHAPE_LIST, ModelField

SPECIFICATION = "Open Referral UK 3.0 (HSDS 3.0)"
STORE_FORMAT = 1

ACTIVE = "active"
STATUSES = {"active", "inactive", "defunct", "temporarily closed"}
PHONE_TYPES_NOT_CALLABLE = {"fax", "pager"}
MAX_PHONES = 3
MAX_NAME = 200
MAX_SUMMARY = 160
MAX_DESCRIPTION = 1000
MAX_URL = 2000
OLDEST_AGE = 130

# Ofcom's numbers for drama (fiction): reserved, never allocated, so libphonenumber calls them invalid.
# They are accepted so a test feed works, and the import report counts them: a live feed never has them.
DRAMA_PREFIXES = (
    "1134960", "1144960", "1154960", "1164960", "1174960", "1184960",
    "1214960", "1314960", "1414960", "1514960", "1614960",
    "2079460", "1632960", "7700900", "8081570", "9098790", "3069990",
)  # fmt: skip

POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")  # written without spaces
EMAIL = re.compile(r"^[^@\s<>\"']+@[^@\s<>\"']+\.[A-Za-z]{2,}$")
TAG = re.compile(r"<[^>]*>")
SPACE = re.compile(r"\s+")
SENTENCE_END = re.compile(r"(?<=[.!?])\s")
UNSAFE_IN_URL = re.compile(r"[\s<>\"'`\\\x00-\x1f\x7f]")
DAYS = {"MO": "Monday", "TU": "Tuesday", "WE": "Wednesday", "TH": "Thursday", "FR": "Friday", "SA": "Saturday",
        "SU": "Sunday"}  # fmt: skip


# ----- the feed: Open Referral UK / HSDS 3.0 ---------------------------------------------------------


class _Feed(BaseModel):
    """A feed object: unknown fields are ignored, and ``null`` for a list means an empty list."""

    class Config:
        extra = Extra.ignore
        anystr_strip_whitespace = True

    @validator("*", pre=True)
    def _null_list_is_empty(cls, value: Any, field: ModelField) -> Any:  # noqa: N805
        if value is None and field.shape == SHAPE_LIST:
            return []
        return value


class FeedPhone(_Feed):
    """``phone``: HSDS 3.0 requires ``id`` and ``number``; the assistant relies on ``number``."""

    number: str
    extension: Optional[str] = None
    type: Optional[str] = None
    description: Optional[str] = None


class FeedContact(_Feed):
    """``contact``: a named contact of a service, a service at a location, or a location."""

    name: Optional[str] = None
    email: Optional[str] = None
    phones: List[FeedPhone] = []


class FeedAddress(_Feed):
    """``address``: one address of a location."""

    address_1: Optional[str] = None
    address_2: Optional[str] = None
    city: Optional[str] = None
    region: Optional[str] = None
    state_province: Optional[str] = None
    postal_code: Optional[str] = None
    country: Optional[str] = None
    address_type: Optional[str] = None


class FeedLocation(_Feed):
    """``location``: where a service is given (its addresses, phones and contacts)."""

    name: Optional[str] = None
    location_type: Optional[str] = None
    addresses: List[FeedAddress] = []
    phones: List[FeedPhone] = []
    contacts: List[FeedContact] = []


class FeedSchedule(_Feed):
    """``schedule``: when a service is open (RFC 5545 fields, or a free-text description)."""

    description: Optional[str] = None
    freq: Optional[str] = None
    byday: Optional[str] = None
    opens_at: Optional[str] = None
    closes_at: Optional[str] = None


class FeedServiceAtLocation(_Feed):
    """``service_at_location``: a service at one location, with phones and contacts of its own."""

    location: Optional[FeedLocation] = None
    phones: List[FeedPhone] = []
    contacts: List[FeedContact] = []
    schedules: List[FeedSchedule] = []


class FeedServiceArea(_Feed):
    """``service_area``: a free-text area the service covers."""

    name: Optional[str] = None
    description: Optional[str] = None


class FeedTaxonomyTerm(_Feed):
    """``taxonomy_term``: a category the service is filed under."""

    name: Optional[str] = None


class FeedAttribute(_Feed):
    """``attribute``: links the service to a taxonomy term."""

    label: Optional[str] = None
    taxonomy_term: Optional[FeedTaxonomyTerm] = None


class FeedOrganization(_Feed):
    """``organization``: who runs the service."""

    name: Optional[str] = None
    website: Optional[str] = None
    email: Optional[str] = None
    phones: List[FeedPhone] = []


class FeedService(_Feed):
    """``service``, fully nested (``/services/{id}``). Required by HSDS 3.0: ``id``, ``name``, ``status``."""

    id: str
    name: str
    status: str
    description: Optional[str] = None
    url: Optional[str] = None
    email: Optional[str] = None
    minimum_age: Optional[float] = None
    maximum_age: Optional[float] = None
    last_modified: Optional[str] = None
    assured_date: Optional[str] = None
    organization: Optional[FeedOrganization] = None
    phones: List[FeedPhone] = []
    contacts: List[FeedContact] = []
    service_at_locations: List[FeedServiceAtLocation] = []
    service_areas: List[FeedServiceArea] = []
    schedules: List[FeedSchedule] = []
    attributes: List[FeedAttribute] = []

    @validator("id", "name")
    def _not_blank(cls, value: str) -> str:  # noqa: N805
        if not value:
            raise ValueError("must not be empty")
        return value

    @validator("status")
    def _known_status(cls, value: str) -> str:  # noqa: N805
        if value.lower() not in STATUSES:
            raise ValueError(f"must be one of {sorted(STATUSES)}")
        return value.lower()

    @validator("minimum_age", "maximum_age")
    def _an_age(cls, value: Optional[float]) -> Optional[float]:  # noqa: N805
        if value is not None and not 0 <= value <= OLDEST_AGE:
            raise ValueError(f"must be between 0 and {OLDEST_AGE}")
        return value

    @root_validator(skip_on_failure=True)
    def _ages_in_order(cls, values: Dict[str, Any]) -> Dict[str, Any]:  # noqa: N805
        low, high = values.get("minimum_age"), values.get("maximum_age")
        if low is not None and high is not None and low > high:
            raise ValueError(f"minimum_age {low:g} is above maximum_age {high:g}")
        return values


class FeedPage(_Feed):
    """A page of ``/services``: the HSDS 3.0 API's ``Page`` (only ``empty`` is required) and ``contents``."""

    total_items: Optional[int] = None
    total_pages: Optional[int] = None
    page_number: Optional[int] = None
    size: Optional[int] = None
    first_page: Optional[bool] = None
    last_page: Optional[bool] = None
    empty: bool
    contents: List[Dict[str, Any]] = []


# ----- what the assistant keeps ---------------------------------------------------------------------------


class _Kept(BaseModel):
    class Config:
        extra = Extra.forbid


class StoredPhone(_Kept):
    """A checked phone number: as shown (``01632 960123``) and as a ``tel:`` link (``tel:+441632960123``)."""

    display: str
    href: str
    kind: Optional[str] = None


class StoredAddress(_Kept):
    """An address: its lines, town and postcode, and the postcode's outward code (``PR7``)."""

    lines: List[str]
    town: Optional[str] = None
    postcode: Optional[str] = None
    outward: Optional[str] = None


class StoredService(_Kept):
    """One service, as an answer uses it."""

    id: str
    name: str
    summary: Optional[str] = None
    description: Optional[str] = None
    organization: Optional[str] = None
    phones: List[StoredPhone] = []
    email: Optional[str] = None
    url: Optional[str] = None
    addresses: List[StoredAddress] = []
    service_areas: List[str] = []
    min_age: Optional[float] = None
    max_age: Optional[float] = None
    taxonomy: List[str] = []
    schedules: List[str] = []
    last_modified: Optional[str] = None


class Directory(_Kept):
    """The store: where the services come from, when they were copied, and the services."""

    format: int
    specification: str
    source: str
    imported_at: datetime
    counts: Dict[str, int]
    services: List[StoredService]

    @validator("format")
    def _known_format(cls, value: int) -> int:  # noqa: N805
        if value != STORE_FORMAT:
            raise ValueError(f"this assistant reads store format {STORE_FORMAT}, not {value}")
        return value


# ----- from the feed to the store ---------------------------------------------------------------------------


class Skip(Exception):
    """A service the assistant cannot use, with the reason."""


def describe_errors(error: ValidationError) -> str:
    """Turns a validation error into ``field → field: message; ...``."""
    parts = []
    for item in error.errors():
        where = " → ".join(str(p) for p in item["loc"] if p != "__root__")
        parts.append(f"{where}: {item['msg']}" if where else item["msg"])
    return "; ".join(parts)


def plain(text: Optional[str], limit: int) -> Optional[str]:
    """Plain text from a feed field that may hold HTML or odd spacing, cut at ``limit`` characters."""
    if not text:
        return None
    cleaned = SPACE.sub(" ", html.unescape(TAG.sub(" ", text))).strip()
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "…"
    return cleaned or None


def summary_of(description: Optional[str]) -> Optional[str]:
    """The first sentence of a description, at most ``MAX_SUMMARY`` characters."""
    if not description:
        return None
    first = SENTENCE_END.split(description, maxsplit=1)[0]
    return plain(first, MAX_SUMMARY)


def https_url(value: Optional[str]) -> Optional[str]:
    """The URL if it is a plain https address with a host (no credentials, spaces or quotes); else None."""
    if not value:
        return None
    url = value.strip()
    if len(url) > MAX_URL or UNSAFE_IN_URL.search(url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() != "https" or not host or parts.username or parts.password:
        return None
    return url


def email_address(value: Optional[str]) -> Optional[str]:
    """The address if it looks like one; else None."""
    value = (value or "").strip()
    return value if EMAIL.match(value) and len(value) <= 254 else None


def is_drama_number(href: str) -> bool:
    """Whether a ``tel:+44...`` link is in one of Ofcom's ranges for drama."""
    return href.startswith("tel:+44") and href[len("tel:+44") :].startswith(DRAMA_PREFIXES)


def checked_phone(phone: FeedPhone) -> Optional[StoredPhone]:
    """A phone number checked with ``phonenumbers`` (UK by default), or None if it is not a usable number."""
    if (phone.type or "").lower() in PHONE_TYPES_NOT_CALLABLE:
        return None
    try:
        parsed = phonenumbers.parse(phone.number, "GB")
    except phonenumbers.NumberParseException:
        return None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    href = f"tel:{e164}"
    drama = phonenumbers.is_possible_number(parsed) and is_drama_number(href)
    if not (phonenumbers.is_valid_number(parsed) or drama):
        return None
    if parsed.country_code == 44:
        display = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    else:
        display = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    extension = re.sub(r"\D", "", phone.extension or "")
    if extension:
        display, href = f"{display} ext. {extension}", f"{href};ext={extension}"
    return StoredPhone(display=display, href=href, kind=(phone.type or None))


def phones_in_every_place(service: FeedService) -> Iterator[FeedPhone]:
    """Every phone HSDS 3.0 allows for a service, nearest first (the organisation's last)."""
    yield from service.phones
    for contact in service.contacts:
        yield from contact.phones
    for at in service.service_at_locations:
        yield from at.phones
        for contact in at.contacts:
            yield from contact.phones
        if at.location:
            yield from at.location.phones
            for contact in at.location.contacts:
                yield from contact.phones


def service_phones(service: FeedService) -> Tuple[List[StoredPhone], int]:
    """The service's usable phones (at most ``MAX_PHONES``, no repeats), and how many were not usable."""
    kept: List[StoredPhone] = []
    unusable = 0
    places = [list(phones_in_every_place(service))]
    if service.organization:
        places.append(service.organization.phones)
    for phones in places:
        for phone in phones:
            checked = checked_phone(phone)
            if checked is None:
                unusable += 1
            elif all(k.href != checked.href for k in kept) and len(kept) < MAX_PHONES:
                kept.append(checked)
        if kept:
            break
    return kept, unusable


def postcode_parts(value: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
    """A UK postcode written the usual way (``PR7 9ZZ``) and its outward code (``PR7``), or (None, None)."""
    match = POSTCODE.match(SPACE.sub("", value or "").upper())
    if not match:
        return None, None
    return f"{match.group(1)} {match.group(2)}", match.group(1)


def stored_address(address: FeedAddress) -> Optional[StoredAddress]:
    """The address lines, town and postcode of a feed address, or None if it has none of them."""
    lines = [line for line in (plain(address.address_1, 200), plain(address.address_2, 200)) if line]
    town = plain(address.city, 100)
    postcode, outward = postcode_parts(address.postal_code)
    if not (lines or town or postcode):
        return None
    return StoredAddress(lines=lines, town=town, postcode=postcode, outward=outward)


def service_addresses(service: FeedService) -> List[StoredAddress]:
    """The service's physical addresses (postal ones only if it has no physical one)."""
    physical: List[StoredAddress] = []
    postal: List[StoredAddress] = []
    for at in service.service_at_locations:
        for address in at.location.addresses if at.location else []:
            kept = stored_address(address)
            if kept and kept not in physical + postal:
                (postal if (address.address_type or "").lower() == "postal" else physical).append(kept)
    return physical or postal


def schedule_text(schedule: FeedSchedule) -> Optional[str]:
    """A schedule in words: its description, or its days and hours."""
    if schedule.description:
        return plain(schedule.description, 200)
    days = [DAYS.get(code.strip()[-2:].upper(), "") for code in (schedule.byday or "").split(",") if code.strip()]
    hours = " to ".join(t[:5] for t in (schedule.opens_at, schedule.closes_at) if t)
    text = " ".join(part for part in (", ".join(d for d in days if d), hours) if part)
    return text or None


def to_stored(service: FeedService) -> Tuple[StoredService, List[str]]:
    """Keeps what the assistant needs from a valid feed service.

    Returns:
        The kept service and notes on what was dropped (unusable phones, a website that is not https).

    Raises:
        Skip: if the service is not active, or leaves no way to reach it (no phone, https website or email).
    """
    if service.status != ACTIVE:
        raise Skip(f'status is "{service.status}"')
    notes: List[str] = []
    phones, unusable = service_phones(service)
    if unusable:
        notes.append(f"{unusable} phone number(s) not usable")
    organization = service.organization
    url = https_url(service.url) or https_url(organization.website if organization else None)
    if (service.url or (organization and organization.website)) and not url:
        notes.append("website not an https address")
    emails = [service.email, *(c.email for c in service.contacts), organization.email if organization else None]
    email = next((e for e in map(email_address, emails) if e), None)
    if not (phones or url or email):
        raise Skip("no usable phone number, https website or email")
    description = plain(service.description, MAX_DESCRIPTION)
    schedules = [*service.schedules, *(s for at in service.service_at_locations for s in at.schedules)]
    terms = [a.taxonomy_term.name if a.taxonomy_term and a.taxonomy_term.name else a.label for a in service.attributes]
    areas = [plain(a.name or a.description, 200) for a in service.service_areas]
    kept = StoredService(
        id=service.id,
        name=plain(service.name, MAX_NAME) or service.id,
        summary=summary_of(description),
        description=description,
        organization=plain(organization.name, MAX_NAME) if organization else None,
        phones=phones,
        email=email,
        url=url,
        addresses=service_addresses(service),
        service_areas=[a for a in areas if a],
        min_age=service.minimum_age,
        max_age=service.maximum_age,
        taxonomy=[t for t in (plain(term, 100) for term in terms) if t],
        schedules=[s for s in map(schedule_text, schedules) if s],
        last_modified=service.last_modified or service.assured_date,
    )
    return kept, notes


def parse_service(raw: Any) -> Tuple[StoredService, List[str]]:
    """Validates one service record of a feed and keeps what the assistant needs.

    Raises:
        Skip: naming the field(s) at fault, or why the service cannot be used.
    """
    if not isinstance(raw, dict):
        raise Skip(f"not a JSON object but {type(raw).__name__}")
    try:
        service = FeedService.parse_obj(raw)
    except ValidationError as error:
        raise Skip(describe_errors(error)) from error
    return to_stored(service)
