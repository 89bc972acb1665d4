"""Plain English: every message the assistant can send is easy to read for a young reader.

The measure is Flesch reading ease (textstat). A score of 60-70 is "plain English", read easily
by 13- to 15-year-olds; 70-80 is "fairly easy" (about 12). The floors:

- every single message scores at least 60 (no message is harder than plain English);
- all the messages together score at least 75 (on the whole, easy for an 11- or 12-year-old).

Official names (e.g. "Prevention and Early Help Co-ordinators") must stay exactly as the Trust
writes them, and a reader takes them as names, so they count as one short word. Quotes from the
website (the "where does that come from" answer) are the Trust's words, not ours, and are not scored.
"""

from __future__ import annotations

import re
from typing import Iterator, List, Tuple

import textstat
import yaml

from actions.knowledge import load_knowledge
from tests.conftest import KNOWLEDGE, ROOT

PER_MESSAGE_FLOOR = 60.0
OVERALL_FLOOR = 75.0
OFFICIAL_NAMES = [
    "Prevention and Early Help Co-ordinators",
    "Prevention and Early Support",
    "Lancashire County Council",
    "Children and Young People's Trust",
    "Children and Young People's Plan",
    "Children's Partnership Boards",
    "joint planning and commissioning",
]


def messages() -> Iterator[Tuple[str, str]]:
    """(where, text) for every message in the knowledge file and the domain."""
    k = load_knowledge(KNOWLEDGE)
    for line in [*k.answer_lines(k.currency), k.currency.short]:
        yield "currency", line
    for topic_id, topic in k.topics.items():
        for line in [*k.answer_lines(topic), *topic.more]:
            yield f"topics.{topic_id}", line
        for kind, detail in topic.details.items():
            for line in k.answer_lines(detail):
                yield f"topics.{topic_id}.details.{kind}", line
    for kind in k.detail_kinds.values():
        yield "detail_kinds", kind.button
    for line in k.no_detail:
        yield "no_detail", line.format(what="how often", title="the money")
    for line in k.human.answer:
        yield "human", line
    yield "next_steps", k.next_steps.offer.format(title="the money")
    for number, outcome in enumerate(k.outcomes, start=1):
        for line in k.outcome_lines(number, outcome):
            yield f"outcome.{outcome.id}", line
    for line in [*k.local_help.answer, k.local_help.no_local_details.format(place="Burnley"), k.local_help.no_place]:
        yield "local_help", line
    for helpline in k.helplines:
        yield f"helplines.{helpline.id}", helpline.message
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    for name, variants in domain["responses"].items():
        for variant in variants:
            yield name, variant["text"]


def scored(text: str) -> str:
    for name in OFFICIAL_NAMES:
        text = text.replace(name, "Name")
    return re.sub(r"(?m)^\d+\. ", "", text)


def test_every_message_is_plain_english() -> None:
    hard: List[str] = []
    for where, text in messages():
        score = textstat.flesch_reading_ease(scored(text))
        if score < PER_MESSAGE_FLOOR:
            hard.append(f"{where}: {score:.0f}: {text}")
    assert not hard, "messages below Flesch reading ease 60:\n" + "\n".join(hard)


def test_all_messages_together_are_easy_to_read() -> None:
    everything = " ".join(scored(text) for _, text in messages())
    assert textstat.flesch_reading_ease(everything) >= OVERALL_FLOOR


def test_the_floor_catches_hard_text() -> None:
    """The measure tells plain words from official jargon, so the floors mean something."""
    jargon = "Multi-agency safeguarding arrangements necessitate comprehensive interdisciplinary collaboration."
    assert textstat.flesch_reading_ease(jargon) < PER_MESSAGE_FLOOR
    assert textstat.flesch_reading_ease("You can ask me about the Plan.") >= PER_MESSAGE_FLOOR
