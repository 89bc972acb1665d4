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
from actions.answers import ActionAnswerDetail, ActionAnswerTopic, ActionSource, ActionTellMore
from actions.conversation import ActionAffirm, ActionDeny, ActionHuman
from actions.fallback import ActionFallback
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


def buttons(messages: List[Dict[str, Any]]) -> List[Dict[str, str]]:
    return [b for m in messages for b in m.get("buttons") or []]


def payloads(messages: List[Dict[str, Any]]) -> List[str]:
    return [b["payload"] for b in buttons(messages)]


def slot(events: List[Dict[str, Any]], name: str) -> Any:
    return next((e["value"] for e in events if e.get("event") == "slot" and e.get("name") == name), None)


def followup(events: List[Dict[str, Any]]) -> Optional[str]:
    return next((e["name"] for e in events if e.get("event") == "followup"), None)


# ---- topics --------------------------------------------------------------------------------------


async def test_a_topic_is_answered_from_the_knowledge_file_with_a_next_step() -> None:
    messages, events = await run(ActionAnswerTopic(), "ask_children_count", "how many kids in lancs")
    assert "about 280,000 children and young people" in texts(messages)
    assert slot(events, "last_topic") == "children_count"
    assert 2 <= len(buttons(messages)) <= 3 and "/ask_source" in payloads(messages)
    assert messages[-1].get("buttons"), "the buttons end the answer"


async def test_no_answer_is_longer_than_three_messages_plus_the_note(knowledge_copy: Path) -> None:
    data = yaml.safe_load(knowledge_copy.read_text(encoding="utf-8"))
    for topic_id in data["topics"]:
        messages, _ = await run(ActionAnswerTopic(), f"ask_{topic_id}")
        assert len(messages) <= 4, topic_id
        messages, _ = await run(ActionAnswerTopic(), f"ask_{topic_id}", slots={"currency_told": True})
        assert len(messages) <= 3, topic_id


async def test_the_first_plan_answer_has_the_note_once_in_one_message() -> None:
    messages, events = await run(ActionAnswerTopic(), "ask_outcomes", "wat r the outcomes")
    assert "2014 to 2017" in messages[0]["text"] and "under review" in messages[0]["text"]
    assert "1. To feel safe" in texts(messages) and "5. To be listened to" in texts(messages)
    assert slot(events, "currency_told") is True
    messages, _ = await run(ActionAnswerTopic(), "ask_outcomes", slots={"currency_told": True})
    assert "under review" not in texts(messages)


async def test_the_plan_answer_says_its_years_once() -> None:
    messages, _ = await run(ActionAnswerTopic(), "ask_plan", "wots the plan")
    assert texts(messages).count("2014 to 2017") == 1
    assert "under review" in messages[0]["text"]


async def test_a_trust_answer_has_no_currency_note() -> None:
    messages, _ = await run(ActionAnswerTopic(), "ask_boards")
    assert "5 Children's Partnership Boards" in texts(messages)
    assert "under review" not in texts(messages)


@pytest.mark.parametrize(
    "text, entities, has, has_not",
    [
        ("how much do the district councils give", [], "£180,000", "£1,500,000"),
        ("what did schools and the county council put in", [], "£1,500,000", "£180,000"),
        ("tell me about the 1.5 million", [], "£1,500,000", "£180,000"),
        ("what money is there", [], "£180,000", None),
        ("", [{"entity": "topic", "value": "funding_district"}], "£180,000", "£1,500,000"),
    ],
)
async def test_a_question_about_one_figure_gets_that_figure(
    text: str, entities: List[Dict[str, Any]], has: str, has_not: Optional[str]
) -> None:
    messages, _ = await run(ActionAnswerTopic(), "ask_funding", text, entities=entities)
    assert has in texts(messages)
    if has_not:
        assert has_not not in texts(messages)
    else:
        assert "£1,500,000" in texts(messages), "all the money gives both figures"


async def test_a_missing_fact_is_honest_and_offers_what_it_can_do() -> None:
    messages, events = await run(ActionAnswerTopic(), "ask_bus_times")
    assert responses(messages) == ["utter_not_known", "utter_capabilities"]
    assert events == []


async def test_a_corrupted_knowledge_file_never_breaks_the_conversation(knowledge_copy: Path) -> None:
    knowledge_copy.write_text("topics: [unclosed", encoding="utf-8")
    messages, _ = await run(ActionAnswerTopic(), "ask_plan")
    assert responses(messages) == ["utter_error", "utter_capabilities"]


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
    assert messages[0]["text"] == "There are 9 co-ordinators (edited)."


# ---- details, sources, more ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "last, intent, expected",
    [
        ("funding_district", "ask_how_often", "Every year"),
        ("funding_district", "ask_in_kind", "in kind, not as cash"),
        ("funding_district", "ask_what_for", "support team"),
        ("funding", "ask_who_gives", "schools and Lancashire County Council"),
        ("children_count", "ask_who_for", "before birth up to 19"),
        ("coordinators", "ask_how_many", "9 of them"),
        ("plan", "ask_when", "2014 to 2017"),
        ("detail:funding_district:how_often", "ask_who_gives", "district councils"),
    ],
)
async def test_a_detail_of_the_last_answer_comes_from_the_knowledge_file(last: str, intent: str, expected: str) -> None:
    messages, events = await run(ActionAnswerDetail(), intent, "and that?", slots={"last_topic": last})
    assert expected in texts(messages)
    assert slot(events, "last_topic").startswith("detail:")


async def test_a_detail_the_website_does_not_give_is_said_honestly_with_the_source_sentence() -> None:
    messages, events = await run(ActionAnswerDetail(), "ask_when", "since when?", slots={"last_topic": "coordinators"})
    reply = texts(messages)
    assert "does not say when" in reply
    assert "9 Prevention and Early Help Co-ordinators are in post across the county" in reply
    assert buttons(messages)


async def test_a_detail_question_naming_a_topic_answers_about_that_topic() -> None:
    slots = {"last_topic": "plan"}
    messages, _ = await run(ActionAnswerDetail(), "ask_how_often", "is the 180,000 every year", slots=slots)
    assert "annual sum" in texts(messages) or "Every year" in texts(messages)


async def test_a_detail_with_nothing_answered_yet_asks_which_topic() -> None:
    messages, _ = await run(ActionAnswerDetail(), "ask_why", "why?")
    assert responses(messages) == ["utter_which_topic"] and buttons(messages)


async def test_where_does_that_come_from_quotes_every_fact_of_the_last_answer() -> None:
    messages, _ = await run(ActionSource(), "ask_source", slots={"last_topic": "funding"})
    reply = texts(messages)
    assert "About us" in messages[0]["text"]
    assert "annual sum of £180,000 (in kind)" in reply and "£1,500,000 funding" in reply
    messages, _ = await run(ActionSource(), "ask_source", slots={"last_topic": "outcome:be_happy"})
    assert "Plan page" in messages[0]["text"]
    messages, _ = await run(ActionSource(), "ask_source", slots={"last_topic": "detail:funding_district:how_often"})
    assert "annual sum" in texts(messages)
    messages, _ = await run(ActionSource(), "ask_source")
    assert responses(messages) == ["utter_no_source"]


async def test_tell_me_more_gives_what_was_kept_back_then_offers_details() -> None:
    messages, _ = await run(ActionTellMore(), "ask_more", slots={"last_topic": "plan"})
    assert "work together" in texts(messages)
    messages, _ = await run(ActionTellMore(), "ask_more", slots={"last_topic": "funding_district"})
    assert responses(messages) == ["utter_more_details"] and "/ask_how_often" in payloads(messages)


# ---- outcomes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, entity, expected",
    [
        ("tell me more about the third one", None, "To be happy"),
        ("what about being healthy", "being healthy", "To be healthy"),
        ("wot about bein listened to", None, "To be listened to"),
        ("number 2", None, "To do well"),
        ("the last one", None, "To be listened to"),
        ("explain to feel safe", "to feel safe", "To feel safe"),
        ("", "feel_safe", "To feel safe"),
    ],
)
async def test_one_outcome_by_name_or_position(text: str, entity: Optional[str], expected: str) -> None:
    entities = [{"entity": "outcome", "value": entity}] if entity else []
    messages, events = await run(ActionOutcomeDetail(), "ask_outcome_detail", text, entities=entities)
    assert f'"{expected}"' in messages[0]["text"]
    assert slot(events, "last_topic").startswith("outcome:")
    assert buttons(messages)


async def test_an_unclear_outcome_question_lists_them_as_buttons() -> None:
    messages, _ = await run(ActionOutcomeDetail(), "ask_outcome_detail", "tell me more about that")
    assert responses(messages)[0] == "utter_which_outcome"
    assert "3. To be happy" in messages[1]["text"]
    assert len(buttons(messages)) == 5


def test_ordinals() -> None:
    assert ordinal_in("tell me more about the 2nd one", 5) == 2
    assert ordinal_in("what about number four", 5) == 4
    assert ordinal_in("outcome 5", 5) == 5
    assert ordinal_in("outcome 7", 5) is None
    assert ordinal_in("tell me about that one", 5) is None


# ---- local help (no directory imported) ----------------------------------------------------------


async def test_local_help_without_local_entries_says_so_and_invents_nothing() -> None:
    messages, events = await run(
        ActionLocalHelp(),
        "ask_local_help",
        "is there help for my family in Burnley",
        entities=[{"entity": "location", "value": "burnley"}],
    )
    reply = texts(messages)
    assert "9 Prevention and Early Help Co-ordinators" in reply
    assert "Burnley" in reply
    assert not any(ch.isdigit() for ch in reply.replace("9 Prevention", ""))
    assert slot(events, "location") == "Burnley"


async def test_local_help_finds_a_town_without_an_entity() -> None:
    messages, _ = await run(ActionLocalHelp(), "ask_local_help", "any early help in skem?")
    assert "I don't have contact details for Skelmersdale" in texts(messages)


# ---- a way to a person ---------------------------------------------------------------------------


async def test_asking_for_a_person_is_honest_and_gives_the_right_line_to_call() -> None:
    messages, _ = await run(ActionHuman(), "ask_human", "can i talk to a real person")
    reply = texts(messages)
    assert "automated assistant" in reply and "no one here to chat with live" in reply
    assert reply.index("0800 1111") < reply.index("0808 800 5000"), "a child is offered Childline first"
    links = [link for m in messages for link in (m.get("custom") or {}).get("links", [])]
    assert {"type": "tel", "href": "tel:08001111", "text": "0800 1111", "label": "Call Childline, 0800 1111"} in links
    messages, _ = await run(ActionHuman(), "ask_human", "I'm a parent, can I speak to someone about my son")
    reply = texts(messages)
    assert reply.index("0808 800 5000") < reply.index("0800 1111"), "an adult is offered the NSPCC first"


# ---- the safety reply and the check --------------------------------------------------------------


def found(level: str, speaker: str = "child", category: Optional[str] = None, **more: Any) -> Dict[str, Any]:
    return {"safety_net": {"level": level, "speaker": speaker, "category": category, "source": "pattern", **more}}


@pytest.mark.parametrize(
    "speaker, helplines, urgent, first, expected",
    [
        ("child", [], False, "999", ["999", "0800 1111"]),
        ("child", ["samaritans"], True, "999", ["999", "0800 1111", "116 123"]),
        ("adult", [], False, "0808 800 5000", ["0808 800 5000", "999", "0800 1111"]),
        ("adult", [], True, "999", ["999", "0808 800 5000", "0800 1111"]),
    ],
)
async def test_the_full_safety_reply_speaks_to_who_is_talking(
    speaker: str, helplines: List[str], urgent: bool, first: str, expected: List[str]
) -> None:
    extra = found("disclosure", speaker, "x", helplines=helplines, urgent=urgent)
    messages, events = await run(ActionSafeguarding(), "safeguarding", "…", extra=extra)
    numbers = [n for m in messages for link in (m.get("custom") or {}).get("links", []) for n in [link["text"]]]
    assert numbers == expected
    assert numbers[0] == first
    opening = "utter_safety_adult_intro" if speaker == "adult" else "utter_safety_intro"
    assert responses(messages)[0] == opening and responses(messages)[-1] == "utter_safety_outro"
    assert slot(events, "safety_check") is False


async def test_a_risk_gives_999_and_childline_at_once_then_checks_and_keeps_the_question() -> None:
    extra = found("risk", then={"intent": "ask_local_help", "confidence": 0.8})
    messages, events = await run(ActionSafeguarding(), "safeguarding", "any help in chorley, things r bad", extra=extra)
    reply = texts(messages)
    assert "999" in reply and "0800 1111" in reply
    assert responses(messages)[0] == "utter_safety_check_intro" and responses(messages)[-1] == "utter_safety_check"
    assert slot(events, "safety_check") is True
    assert slot(events, "answer_intent") == "ask_local_help"
    assert slot(events, "answer_text") == "any help in chorley, things r bad"


async def test_no_to_the_check_is_thanked_and_goes_back_to_the_question() -> None:
    slots = {"safety_check": True, "answer_intent": "ask_local_help", "answer_text": "help in chorley"}
    messages, events = await run(ActionDeny(), "deny", "no one's in danger", slots=slots)
    assert responses(messages) == ["utter_safety_check_no"]
    assert followup(events) == "action_local_help"
    assert slot(events, "safety_check") is False


async def test_yes_to_the_check_gives_the_full_reply() -> None:
    _, events = await run(ActionAffirm(), "affirm", "/affirm", slots={"safety_check": True})
    assert followup(events) == "action_safeguarding"
    messages, _ = await run(ActionSafeguarding(), "affirm", "/affirm", slots={"safety_speaker": "adult"})
    assert responses(messages)[0] == "utter_safety_adult_intro"


async def test_the_safety_reply_still_goes_out_if_the_knowledge_is_broken(knowledge_copy: Path) -> None:
    knowledge_copy.unlink()
    messages, _ = await run(ActionSafeguarding(), "safeguarding", "…", extra=found("disclosure"))
    assert "utter_safety_fallback_helplines" in responses(messages)
    messages, _ = await run(ActionSafeguarding(), "safeguarding", "…", extra=found("risk"))
    assert "utter_safety_fallback_helplines" in responses(messages)


# ---- not understood ------------------------------------------------------------------------------


async def test_the_fallback_offers_the_second_opinion_in_plain_words() -> None:
    extra = {"second_opinion": {"intent": "ask_funding", "score": 5.0, "ratio": 1.1, "decided": False}}
    messages, events = await run(ActionFallback(), "nlu_fallback", "munny??", extra=extra)
    assert "Did you want to know about the money?" in messages[0]["text"]
    assert payloads(messages) == ["/affirm", "/deny"]
    assert slot(events, "offered_intent") == "ask_funding"
    _, events = await run(ActionAffirm(), "affirm", "/affirm", slots={"offered_intent": "ask_funding"})
    assert followup(events) == "action_answer_topic" and slot(events, "answer_intent") == "ask_funding"


async def test_the_fallback_asks_to_rephrase_with_topics_when_it_has_no_guess() -> None:
    ranking = [{"name": "nlu_fallback", "confidence": 0.55}, {"name": "ask_funding", "confidence": 0.1}]
    messages, _ = await run(ActionFallback(), "nlu_fallback", "zzzz", ranking=ranking)
    assert responses(messages) == ["utter_fallback_rephrase"] and "/ask_plan" in payloads(messages)


async def test_a_second_miss_never_repeats_and_offers_feedback_and_a_person() -> None:
    events = [
        {"event": "user", "text": "zzz"},
        {"event": "action", "name": "action_fallback"},
        {"event": "bot", "text": "Sorry, I didn't understand that."},
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "qqq"},
    ]
    messages, _ = await run(ActionFallback(), "nlu_fallback", "qqq", events=events)
    assert responses(messages) == ["utter_fallback_again", "utter_fallback_help"]
    assert "/give_feedback" in payloads(messages) and "/ask_human" in payloads(messages)


async def test_no_after_an_offer_gives_the_topics_and_help() -> None:
    messages, events = await run(ActionDeny(), "deny", "/deny", slots={"offered_intent": "ask_funding"})
    assert responses(messages) == ["utter_offer_declined"] and "/ask_human" in payloads(messages)
    assert slot(events, "offered_intent") is None
