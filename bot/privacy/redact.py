"""Removes personal details from what people type, before it is stored.

``redact(text)`` replaces, in this order:

- email addresses, also written out ("jo dot bloggs at gmail dot com", "jo [at] mail [dot] co [dot] uk");
- phone numbers, found with ``phonenumbers`` (Google's libphonenumber) in any format it knows:
  "(01772) 254868", "+44 (0)7700 900123", "07700900123", international numbers; plus any other
  run of 9 or more digits with spaces, dots or dashes between them (numbers that are not
  allocated yet, or the Ofcom drama ranges);
- full UK postcodes ("PR1 2AB"; an outward code alone, "PR7", is not personal and stays);
- street addresses ("12 Acacia Avenue", "I live at ...", "my address is ...");
- social media handles ("@jo_b");
- schools named with a kind of school ("Fulwood Academy", "St Mary's", "Ribbleton High School"),
  and names given with them or said outright ("my name is ...", "I'm Jo Bloggs from ...").

It is cautious, not perfect: a name typed with no cue at all ("jo says hi") is not found.
The markers are plain words in square brackets, so a reader sees that something was there.
"""

from __future__ import annotations

import re
from typing import Callable, List, Match, Pattern, Tuple

EMAIL = "[email removed]"
PHONE = "[phone number removed]"
POSTCODE = "[postcode removed]"
ADDRESS = "[address removed]"
HANDLE = "[handle removed]"
SCHOOL = "[school removed]"
NAME = "[name removed]"

# Phone numbers: what phonenumbers calls "possible" with at least this many digits (a year such
# as 2014 is a possible short number; no real phone number has fewer than 7 digits here).
MIN_PHONE_DIGITS = 7
_DIGIT_RUN = re.compile(r"(?<![\w])\+?\(?\d[\d\s().-]{7,}\d(?![\w])")
MIN_DIGIT_RUN = 9

_DOT = r"(?:\s*\.\s*|\s*[\(\[{]\s*dot\s*[\)\]}]\s*|\s+dot\s+)"
_AT = r"(?:\s*@\s*|\s*[\(\[{]\s*at\s*[\)\]}]\s*|\s+at\s+)"
_TLD = r"(?:com|co|uk|org|net|edu|gov|ac|sch|nhs|io|me|info|biz|us|ie|eu)"
_EMAILS = [
    re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE),
    # Written out: the domain must end in a known top-level domain, so "meet at school dot com" is
    # caught but "look at the plan" is not.
    re.compile(rf"\b[\w+-]+(?:{_DOT}[\w+-]+)*{_AT}[\w-]+(?:{_DOT}[\w-]+)*{_DOT}{_TLD}\b", re.IGNORECASE),
]
_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b", re.IGNORECASE)
_HANDLE = re.compile(r"(?<![\w.@])@[A-Za-z0-9_.]{2,30}\b")
_STREET_WORDS = (
    "street|st|road|rd|avenue|ave|lane|ln|close|drive|dr|way|court|ct|crescent|cres|place|pl|terrace|"
    "grove|gardens|gdns|walk|row|mews|parade|square|sq|brow|fold|meadow|meadows|rise|view|hill"
)
_ADDRESSES = [
    re.compile(
        r"\b(?:i\s+live\s+(?:at|on)|my\s+address\s+is|address\s*:)\s+(?!\[)(?:(?!\s+(?:and|but|so|because|cos|coz|or)\b)[^.!?\n[,]){1,60}",
        re.IGNORECASE,
    ),
    re.compile(
        rf"\b(?:(?:flat|apartment|apt)\s*\d{{1,4}}[a-z]?,?\s+)?\d{{1,4}}[a-z]?,?\s+(?:[a-z'’-]+\s+){{1,3}}(?:{_STREET_WORDS})\b\.?",
        re.IGNORECASE,
    ),
]
_NOT_NAME_WORDS = (
    "the|a|an|my|our|your|his|her|their|to|at|go|goes|going|went|from|in|of|and|or|i|im|is|was|attend|"
    "attends|study|studies|this|that|new|old|local|big|nearest|near|which|what|secondary|primary|high|"
    "junior|infant|infants|any|every|each|some|no|for|with|on|by|about|after|before"
)
_SCHOOL_KINDS = r"primary|secondary|high|junior|juniors|infant|infants|grammar|academy|college|school"
_SCHOOLS = [
    re.compile(
        rf"\b(?:(?!(?:{_NOT_NAME_WORDS})\b)[a-z][\w'’.-]*\s+){{1,3}}(?:(?:c\s?of\s?e|ce|rc)\s+)?"
        rf"(?:{_SCHOOL_KINDS})\b(?:\s+school\b)?",
        re.IGNORECASE,
    ),
    re.compile(r"\b(?:st\.?|saint)\s+[a-z]+(?:['’]?s)?\b(?:\s+(?:c\s?of\s?e|ce|rc)\b)?", re.IGNORECASE),
]
_NAME_INTROS = re.compile(
    r"\b(?:my\s+name\s+is|my\s+names|my\s+name['’]s|i\s+am\s+called|i['’]?m\s+called|im\s+called|"
    r"call\s+me(?!\s+(?:on|at|back|when|if|after|before|later|now|please|pls|asap|tomorrow|today)\b)|"
    r"name\s*:)\s+[a-z'’-]+(?:\s+(?!(?:and|but|from|at|in|i|im|my|to|the|is|was|year|age|aged)\b)[a-z'’-]+)?",
    re.IGNORECASE,
)
# Only when a school was named too: "I'm Jo Bloggs from [school removed]", "Jo Bloggs, year 8 at ...".
_NAME_BEFORE_SCHOOL = re.compile(
    r"\b(i['’]?m|i\s+am|im|it['’]?s|this\s+is)\s+[a-z'’-]+(?:\s+[a-z'’-]+)?(?=\s*,?\s+(?:from|at|in|year|yr|y\d))",
    re.IGNORECASE,
)
_TITLE_CASE_PAIR = re.compile(r"\b[A-Z][a-z'’-]+\s+[A-Z][a-z'’-]+\b")


def _phone_matches(text: str) -> List[Tuple[int, int]]:
    """Where phonenumbers finds a possible phone number of at least ``MIN_PHONE_DIGITS`` digits."""
    if sum(char.isdigit() for char in text) < MIN_PHONE_DIGITS:
        return []
    import phonenumbers  # imported on first use: no work at import time

    spans = []
    for match in phonenumbers.PhoneNumberMatcher(text, "GB", leniency=phonenumbers.Leniency.POSSIBLE):
        if sum(char.isdigit() for char in match.raw_string) >= MIN_PHONE_DIGITS:
            spans.append((match.start, match.end))
    return spans


def _replace_spans(text: str, spans: List[Tuple[int, int]], marker: str) -> str:
    for start, end in sorted(spans, reverse=True):
        text = text[:start] + marker + text[end:]
    return text


def _long_digit_run(match: Match[str]) -> str:
    value = match.group(0)
    return PHONE if sum(char.isdigit() for char in value) >= MIN_DIGIT_RUN else value


def _sub_all(patterns: List[Pattern[str]], marker: str) -> Callable[[str], str]:
    def apply(text: str) -> str:
        for pattern in patterns:
            text = pattern.sub(marker, text)
        return text

    return apply


def redact(text: str) -> str:
    """Returns ``text`` with personal details replaced by markers such as "[phone number removed]".

    Args:
        text: what a person typed.

    Returns:
        The text with email addresses, phone numbers, full postcodes, street addresses, handles,
        schools and names given with them replaced. Text with none of these comes back unchanged.
    """
    if not text:
        return text
    text = _sub_all(_EMAILS, EMAIL)(text)
    text = _replace_spans(text, _phone_matches(text), PHONE)
    text = _DIGIT_RUN.sub(_long_digit_run, text)
    text = _POSTCODE.sub(POSTCODE, text)
    text = _sub_all(_ADDRESSES, ADDRESS)(text)
    text = _HANDLE.sub(HANDLE, text)
    text = _NAME_INTROS.sub(NAME, text)
    with_school = _sub_all(_SCHOOLS, SCHOOL)(text)
    if with_school != text:
        with_school = _NAME_BEFORE_SCHOOL.sub(lambda match: f"{match.group(1)} {NAME}", with_school)
        with_school = _TITLE_CASE_PAIR.sub(NAME, with_school)
    return with_school
