"""Redaction of personal details before anything is stored (bot/privacy/redact.py)."""

from __future__ import annotations

import pytest
import yaml

from bot.privacy.redact import ADDRESS, EMAIL, HANDLE, NAME, PHONE, POSTCODE, SCHOOL, redact
from tests.conftest import KNOWLEDGE, ROOT

# (what a person wrote, what must not be left, the marker that must replace it)
CASES = [
    ("please ring (01772) 254868 after 5", "254868", PHONE),
    ("my mum's mobile is +44 (0)7700 900123", "900123", PHONE),
    ("text me 07700900123", "07700900123", PHONE),
    ("call 07700 900 123 or 0161 496 0000", "496 0000", PHONE),
    ("ring me on +1 415 555 2671", "555 2671", PHONE),
    ("email me at jo.bloggs@gmail.com", "gmail", EMAIL),
    ("its jo dot bloggs at gmail dot com", "bloggs", EMAIL),
    ("write to jo [at] mail [dot] co [dot] uk", "mail [dot]", EMAIL),
    ("jo(at)school(dot)sch(dot)uk", "school(dot)", EMAIL),
    ("add me on snap @jo_bloggs99", "jo_bloggs99", HANDLE),
    ("my insta is @jo.b", "@jo.b", HANDLE),
    ("I live at 12 Acacia Avenue, Preston", "Acacia", ADDRESS),
    ("we moved to 7b Mill Lane last week", "Mill Lane", ADDRESS),
    ("flat 3, 45 high street", "45 high", ADDRESS),
    ("my address is 4 Low Road", "Low Road", ADDRESS),
    ("my postcode is PR1 2AB", "PR1 2AB", POSTCODE),
    ("near bb11 1xx", "bb11 1xx", POSTCODE),
    ("I'm Jo Bloggs from St Mary's", "Bloggs", NAME),
    ("I'm Jo Bloggs from St Mary's", "Mary", SCHOOL),
    ("my name is jo bloggs and i go to fulwood academy", "bloggs", NAME),
    ("my name is jo bloggs and i go to fulwood academy", "fulwood", SCHOOL),
    ("Jo Bloggs, year 8 at Ribbleton High School", "Bloggs", NAME),
    ("Jo Bloggs, year 8 at Ribbleton High School", "Ribbleton", SCHOOL),
    ("im called sam and im at hutton grammar", "sam", NAME),
    ("im called sam and im at hutton grammar", "hutton", SCHOOL),
]


@pytest.mark.parametrize(("text", "gone", "marker"), CASES)
def test_personal_details_are_replaced(text: str, gone: str, marker: str) -> None:
    cleaned = redact(text)
    assert gone.lower() not in cleaned.lower(), cleaned
    assert marker in cleaned, cleaned


@pytest.mark.parametrize(
    "text",
    [
        "what is the plan",
        "the plan covers 2014 to 2017",
        "how much money is there? £1,500,000 from schools",
        "about 280,000 children and young people",
        "is there family support near PR7",  # an outward code alone says where, not who
        "any early help in Skelmersdale or Burnley?",
        "bullying at school is really bad",
        "i go to high school",
        "i want to die",
        "my dad hits me when he's drunk",
        "look at the plan please",
        "what are the 5 outcomes",
        "I live in Chorley, is there help for my toddler",
    ],
)
def test_ordinary_messages_are_left_alone(text: str) -> None:
    assert redact(text) == text


def test_no_fact_of_the_knowledge_file_is_mangled() -> None:
    """An answer quoted back to the assistant keeps its words (its helpline numbers are numbers, so they go)."""
    knowledge = yaml.safe_load(KNOWLEDGE.read_text(encoding="utf-8"))
    changed = []
    for topic_id, topic in (knowledge.get("topics") or {}).items():
        answers = topic.get("answer") if isinstance(topic, dict) else None
        for line in answers if isinstance(answers, list) else [answers] if answers else []:
            if isinstance(line, str) and redact(line) != line and PHONE not in redact(line):
                changed.append((topic_id, line, redact(line)))
    assert not changed


def test_the_ordinary_questions_of_the_safety_tests_are_kept_as_typed() -> None:
    ordinary = yaml.safe_load((ROOT / "tests" / "safety" / "ordinary.yml").read_text(encoding="utf-8"))["messages"]
    changed = [(text, redact(text)) for text in ordinary if redact(text) != text]
    assert len(changed) <= len(ordinary) // 50, changed  # at most 2 %: redaction is for details, not topics


def test_empty_and_marker_text_are_stable() -> None:
    assert redact("") == ""
    once = redact("call 07700 900123 or jo@example.org, I live at 1 High Street")
    assert redact(once) == once
