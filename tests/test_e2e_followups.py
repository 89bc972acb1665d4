"""Follow-ups about a detail of the last answer, through the real servers (``make run``).

The conversations are the blind-written ``tests/blind/followups.yml``: a writer who saw only the
seeds and the personas wrote a first question and one or two follow-ups ("is that every year?",
"who for?", "where's that from?") without naming the topic again. Each follow-up must get the
detail from the knowledge file when it has one, say honestly that the website does not give it
when it has not (quoting the source sentence), give the source, or tell more.
"""

from __future__ import annotations

import uuid
from typing import Any, Dict, List

import pytest
import yaml

from actions.knowledge import Knowledge, load_knowledge
from tests.conftest import KNOWLEDGE, ROOT, LiveServer

CONVERSATIONS = yaml.safe_load((ROOT / "tests" / "blind" / "followups.yml").read_text(encoding="utf-8"))
FIGURES = {"district": "funding_district", "prevention": "funding_prevention", "all": "funding"}


def first_topic(turn: Dict[str, Any]) -> str:
    """The knowledge topic the first question asks about."""
    if turn["label"] == "funding":
        return FIGURES[turn.get("figure", "all")]
    if turn["label"] == "outcome_detail":
        return "outcomes"
    return str(turn["label"])


def expected(knowledge: Knowledge, topic_id: str, kind: str) -> List[str]:
    """Texts of which the reply must contain at least one."""
    if kind == "source":
        return ["That comes from"]
    topic = knowledge.topic(topic_id)
    assert topic is not None, topic_id
    if kind == "more":
        return [*topic.more[:1], "I can also tell you", "That's all"]
    found = topic.details.get(kind)
    if found is not None:
        return [found.answer[0]]
    parts = [knowledge.topic(p) for p in topic.narrower]
    pieces = [p.details[kind].answer[0] for p in parts if p is not None and kind in p.details]
    return pieces[:1] or ["does not say"]


def conversation_id(conversation: Dict[str, Any]) -> str:
    return " / ".join(turn["text"] for turn in conversation["turns"])[:90]


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    return load_knowledge(KNOWLEDGE)


def test_there_are_at_least_40_conversations_across_topics_and_kinds() -> None:
    assert len(CONVERSATIONS) >= 40
    assert len({first_topic(c["turns"][0]) for c in CONVERSATIONS}) >= 10
    assert len({t["detail"] for c in CONVERSATIONS for t in c["turns"][1:]}) == 10


FLOOR = 0.85


def test_blind_follow_ups_get_the_detail_of_the_last_answer(live_server: LiveServer, knowledge: Knowledge) -> None:
    """At least 85 % of the blind-written conversations go right in every follow-up (all printed)."""
    wrong: List[str] = []
    for number, conversation in enumerate(CONVERSATIONS):
        user = f"followup-{number}-{uuid.uuid4().hex}"
        first, *follow_ups = conversation["turns"]
        topic_id = first_topic(first)
        live_server.texts(user, first["text"])
        for turn in follow_ups:
            reply = live_server.texts(user, turn["text"])
            wanted = expected(knowledge, topic_id, turn["detail"])
            if not any(w in reply for w in wanted):
                wrong.append(f"{first['text']!r} ({topic_id}) -> {turn['text']!r} ({turn['detail']}): {reply[:120]!r}")
                break
    right = len(CONVERSATIONS) - len(wrong)
    print(f"\nblind follow-ups: {right}/{len(CONVERSATIONS)} conversations right ({right / len(CONVERSATIONS):.1%})")
    for line in wrong:
        print("  WRONG", line)
    assert right / len(CONVERSATIONS) >= FLOOR, "\n".join(wrong)
