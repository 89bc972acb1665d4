"""The custom actions, run against trackers built with Tracker.from_dict (no server needed)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import actions.knowledge as knowledge_module
from actions.answers import ActionAnswerTopic, ActionSource, ActionWhoPays
from actions.fallback import ActionAskAffirmation
from actions.local_help import ActionLocalHelp
from actions.outcomes import ActionOutcomeDetail, ordinal_in
from actions.safeguarding import ActionSafeguarding
from tests.conftest import KNOWLEDGE, tracker_dict


@pytest.fixture(autouse=True)
def knowledge_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test reads its own copy of the knowledge file, and no imported service directory."""
    path = tmp_path / "lancashire.yml"
    shutil.copy(KNOWLEDGE, path)
    monkeypatch.setenv("KNOWLEDGE_FILE", str(path))
    monkeypatch.setenv("SERVICES_FILE", str(tmp_path / "no-services.json"))
    monkeypatch.setattr(knowledge_module, "_default", None)
    return path


async def run(
    action: Any, intent: str, text: str = "", **kwargs: Any
) -> tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    tracker = Tracker.from_dict(tracker_dict(intent, text, **kwargs))
    events = await action.run(dispatcher, tracker, {})
    return dispatcher.messages, events


def texts(messages: List[Dict[str, Any]]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


def responses(messages: List[Dict[str, Any]]) -> List[Optional[str]]:
    return [m.get("response") for m in messages]


def slot(events: List[Dict[str, Any]], name: str) -> Any:
    return next((e["value"] for e in events if e.get("event") == "slot" and e.get("name") == name), None)


async def test_a_topic_is_answered_from_the_knowledge_file() -> None:
    messages, events = await run(ActionAnswerTopic(), "ask_children_count", "how many kids in lancs")
    assert "about 280,000 children and young people" in texts(messages)
    assert slot(events, "last_topic") == "children_count"


async def test_the_first_plan_answer_says_it_covers_2014_17_and_was_under_review() -> None:
    messages, events = await run(ActionAnswerTopic(), "ask_outcomes", "wat r the outcomes")
    assert "2014 to 2017" in messages[0]["text"] and "autumn 2018" in messages[1]["text"]
    assert "1. To feel safe" in texts(messages) and "5. To be listened to" in texts(messages)
    assert slot(events, "currency_told") is True
    messages, _ = await run(ActionAnswerTopic(), "ask_outcomes", slots={"currency_told": True})
    assert "2014 to 2017" not in texts(messages)


async def test_a_trust_answer_has_no_currency_note() -> None:
    messages, _ = await run(ActionAnswerTopic(), "ask_boards")
    assert "5 Children's Partnership Boards" in texts(messages)
    assert "2014 to 2017" not in texts(messages)


async def test_a_missing_fact_is_honest_and_offers_what_it_can_do() -> None:
    messages, events = await run(ActionAnswerTopic(), "ask_bus_times")
    assert responses(messages) == ["utter_not_known", "utter_capabilities"]
    assert events == []


async def test_a_corrupted_knowledge_file_never_breaks_the_conversation(knowledge_copy: Path) -> None:
    knowledge_copy.write_text("topics: [unclosed", encoding="utf-8")
    messages, _ = await run(ActionAnswerTopic(), "ask_plan")
    assert responses(messages) == ["utter_not_known", "utter_capabilities"]


async def test_an_edit_to_the_knowledge_file_shows_in_the_next_answer(
    knowledge_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages, _ = await run(ActionAnswerTopic(), "ask_coordinators")
    assert "9 Prevention and Early Help Co-ordinators" in texts(messages)
    data = yaml.safe_load(knowledge_copy.read_text(encoding="utf-8"))
    data["topics"]["coordinators"]["answer"] = ["There are 9 co-ordinators (edited)."]
    knowledge_copy.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    monkeypatch.setattr(knowledge_module._default, "_checked_at", float("-inf"))  # skip the 1 s check interval
    messages, _ = await run(ActionAnswerTopic(), "ask_coordinators")
    assert texts(messages) == "There are 9 co-ordinators (edited)."


async def test_who_pays_follows_up_the_last_figure() -> None:
    messages, _ = await run(ActionWhoPays(), "ask_who_pays", "who pays for that?", slots={"last_topic": "funding"})
    assert "district councils" in texts(messages) and "schools and Lancashire County Council" in texts(messages)


async def test_who_pays_without_a_known_payer_is_honest() -> None:
    for last in ("children_count", "coordinators", None):
        messages, _ = await run(ActionWhoPays(), "ask_who_pays", slots={"last_topic": last})
        assert responses(messages) == ["utter_not_known", "utter_capabilities"], last


async def test_where_does_that_come_from_names_the_page_and_quotes_it() -> None:
    messages, _ = await run(ActionSource(), "ask_source", slots={"last_topic": "children_count"})
    assert "About us" in messages[0]["text"]
    assert "approximately 280,000 children and young people between pre-birth and 19" in messages[1]["text"]
    messages, _ = await run(ActionSource(), "ask_source", slots={"last_topic": "outcome:be_happy"})
    assert "Plan page" in messages[0]["text"]
    messages, _ = await run(ActionSource(), "ask_source")
    assert responses(messages) == ["utter_no_source"]


@pytest.mark.parametrize(
    "text, entity, expected",
    [
        ("tell me more about the third one", None, "To be happy"),
        ("what about being healthy", "being healthy", "To be healthy"),
        ("wot about bein listened to", None, "To be listened to"),
        ("number 2", None, "To do well"),
        ("the last one", None, "To be listened to"),
        ("explain to feel safe", "to feel safe", "To feel safe"),
    ],
)
async def test_one_outcome_by_name_or_position(text: str, entity: Optional[str], expected: str) -> None:
    entities = [{"entity": "outcome", "value": entity}] if entity else []
    messages, events = await run(ActionOutcomeDetail(), "ask_outcome_detail", text, entities=entities)
    assert f'"{expected}"' in messages[0]["text"]
    assert slot(events, "last_topic").startswith("outcome:")


async def test_an_unclear_outcome_question_lists_them() -> None:
    messages, _ = await run(ActionOutcomeDetail(), "ask_outcome_detail", "tell me more about that")
    assert responses(messages)[0] == "utter_which_outcome"
    assert "3. To be happy" in messages[1]["text"]


def test_ordinals() -> None:
    assert ordinal_in("tell me more about the 2nd one", 5) == 2
    assert ordinal_in("what about number four", 5) == 4
    assert ordinal_in("outcome 5", 5) == 5
    assert ordinal_in("outcome 7", 5) is None
    assert ordinal_in("tell me about that one", 5) is None


async def test_local_help_without_local_entries_says_so_and_invents_nothing() -> None:
    messages, events = await run(
        ActionLocalHelp(),
        "ask_local_help",
        "is there help for my family in Burnley",
        entities=[{"entity": "location", "value": "burnley"}],
    )
    reply = texts(messages)
    assert "9 Prevention and Early Help Co-ordinators" in reply
    assert "schools and Lancashire County Council" in reply
    assert "I don't have contact details for Burnley" in reply
    assert not any(ch.isdigit() for ch in reply.replace("9 Prevention", ""))
    assert slot(events, "location") == "Burnley"


async def test_local_help_finds_a_town_without_an_entity() -> None:
    messages, _ = await run(ActionLocalHelp(), "ask_local_help", "any early help in skem?")
    assert "I don't have contact details for Skelmersdale" in texts(messages)


async def test_local_help_with_no_place_asks_for_one() -> None:
    messages, _ = await run(ActionLocalHelp(), "ask_local_help", "is there help for families")
    assert "town or district" in texts(messages)


async def test_local_help_gives_the_local_answer_once_the_area_has_entries(knowledge_copy: Path) -> None:
    data = yaml.safe_load(knowledge_copy.read_text(encoding="utf-8"))
    burnley = next(a for a in data["areas"] if a["district"] == "Burnley")
    burnley["services"] = [
        {
            "name": "Test Family Hub",
            "description": "Help for families.",
            "contact": {
                "name": "Test Family Hub",
                "phone": "01234 567890",
                "source": {"page": "trust_page", "quote": "q"},
            },
            "source": {"page": "trust_page", "quote": "q"},
        }
    ]
    knowledge_copy.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    messages, events = await run(ActionLocalHelp(), "ask_local_help", "help for my family in padiham")
    reply = texts(messages)
    assert "Padiham (Burnley)" in reply and "Test Family Hub" in reply and "Phone: 01234 567890" in reply
    assert "I don't have contact details" not in reply
    assert slot(events, "last_topic") == "area:Burnley"


@pytest.mark.parametrize(
    "category, expected",
    [
        (None, ["999", "0800 1111", "0808 800 5000"]),
        ("self_harm_or_suicide", ["999", "0800 1111", "116 123"]),
        ("adult_worried_about_child", ["0808 800 5000", "999"]),
    ],
)
async def test_the_safety_reply_gives_the_right_helplines(category: Optional[str], expected: List[str]) -> None:
    extra = {"safety_net": {"category": category, "source": "pattern"}} if category else None
    messages, _ = await run(ActionSafeguarding(), "safeguarding", "…", extra=extra)
    reply = texts(messages)
    for number in expected:
        assert number in reply
    opening = "utter_safety_adult_intro" if category == "adult_worried_about_child" else "utter_safety_intro"
    assert responses(messages)[0] == opening and responses(messages)[-1] == "utter_safety_outro"


async def test_the_safety_reply_still_goes_out_if_the_knowledge_is_broken(knowledge_copy: Path) -> None:
    knowledge_copy.unlink()
    messages, _ = await run(ActionSafeguarding(), "safeguarding", "…")
    assert "utter_safety_fallback_helplines" in responses(messages)


async def test_the_fallback_checks_the_guessed_topic_in_plain_words() -> None:
    ranking = [{"name": "nlu_fallback", "confidence": 0.55}, {"name": "ask_funding", "confidence": 0.45}]
    messages, _ = await run(ActionAskAffirmation(), "nlu_fallback", "munny??", ranking=ranking)
    assert "Did you want to know about the money?" in messages[0]["text"]
    assert [b["payload"] for b in messages[0]["buttons"]] == ["/ask_funding", "/out_of_scope"]


async def test_the_fallback_asks_to_rephrase_when_the_guess_is_weak() -> None:
    ranking = [{"name": "nlu_fallback", "confidence": 0.55}, {"name": "ask_funding", "confidence": 0.1}]
    messages, _ = await run(ActionAskAffirmation(), "nlu_fallback", "zzzz", ranking=ranking)
    assert responses(messages) == ["utter_ask_rephrase"]


async def test_when_only_the_classifier_suspects_danger_it_gives_helplines_then_checks() -> None:
    ranking = [{"name": "nlu_fallback", "confidence": 0.7}, {"name": "safeguarding", "confidence": 0.7}]
    messages, _ = await run(ActionAskAffirmation(), "nlu_fallback", "things are bad at home", ranking=ranking)
    assert responses(messages)[0] == "utter_safety_check_intro"
    assert "999" in texts(messages) and "0800 1111" in texts(messages)
    assert responses(messages)[-1] == "utter_safety_check"
