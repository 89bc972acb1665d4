"""Services from the imported directory: reading a question, matching, and the answers (Tracker.from_dict)."""

from __future__ import annotations

import json
import logging
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Set

import pytest
import textstat
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import actions.knowledge as knowledge_module
import bot.directory.store as store_module
from actions.answers import ActionSource
from actions.knowledge import Knowledge, load_knowledge
from actions.local_help import ActionLocalHelp, ActionMoreServices
from actions.services import Query, find_age, find_postcode, find_services, find_stage, merge, read_query
from bot.directory.importer import Limits, run_import
from bot.directory.model import Directory
from tests.conftest import KNOWLEDGE, tracker_dict
from tests.openreferral_feed import FIXTURES

NOW = datetime.now(timezone.utc).replace(microsecond=0)
PHONE_IN_TEXT = re.compile(r"\b0\d{3,4} ?\d{3} ?\d{3,4}\b")


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    return load_knowledge(KNOWLEDGE)


@pytest.fixture(autouse=True)
def setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test reads its own knowledge copy and its own store (none until a test imports one)."""
    copy = tmp_path / "lancashire.yml"
    shutil.copy(KNOWLEDGE, copy)
    store = tmp_path / "services.json"
    monkeypatch.setenv("KNOWLEDGE_FILE", str(copy))
    monkeypatch.setenv("SERVICES_FILE", str(store))
    monkeypatch.delenv("SERVICES_MAX_AGE_DAYS", raising=False)
    monkeypatch.setattr(knowledge_module, "_default", None)
    monkeypatch.setattr(store_module, "_default", None)
    return store


def imported(store: Path, source: Path = FIXTURES / "good", days_ago: int = 0, force: bool = False) -> Directory:
    _, directory = run_import(
        str(source), store, Limits(), shown_source="https://directory.example.org/api",
        now=NOW - timedelta(days=days_ago), force=force,
    )  # fmt: skip
    store_module._default = None  # read the new store now, not after the one-second check
    return directory


def feed_phones() -> Set[str]:
    """Every phone number written anywhere in the fixture feed, digits only."""
    text = "".join(p.read_text() for p in (FIXTURES / "good").rglob("*.json"))
    return {re.sub(r"\D", "", n) for n in re.findall(r'"number": "([^"]+)"', text)}


async def run(action: Any, text: str, intent: str = "ask_local_help", **kwargs: Any) -> tuple[list, list]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, Tracker.from_dict(tracker_dict(intent, text, **kwargs)), {})
    return dispatcher.messages, events


def texts(messages: List[Dict[str, Any]]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


def slots(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def names(services: List[Any]) -> List[str]:
    return [s.name for s in services]


# ----- reading a question ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, district, place, outward, age, stage",
    [
        ("is there early help in Chorley", "Chorley", "Chorley", None, None, None),
        ("family support near PR7", None, None, "PR7", None, None),
        ("help for my toddler's behaviour in Skelmersdale", "West Lancashire", "Skelmersdale", None, None, "toddler"),
        ("something for teenagers in Burnley", "Burnley", "Burnley", None, None, "teenager"),
        ("any clubs 4 13 yr olds in padiham", "Burnley", "Padiham", None, 13, None),
        ("im 14 n live in bb11 wot is there", None, None, "BB11", 14, None),
        ("we live at pr7 9zz, anything for my 3 year old?", None, None, "PR7", 3, None),
        ("wer can i take my 18 month old in skem", "West Lancashire", "Skelmersdale", None, 1, None),
        ("newborn groups near L39", None, None, "L39", None, "baby"),
        ("my son is fourteen years old, we're in Leyland", "South Ribble", "Leyland", None, 14, None),
        ("Signposting options for a pupil aged 9 in Nelson", "Pendle", "Nelson", None, 9, None),
        ("stuff for primary school kids in euxton", "Chorley", "Euxton", None, None, "primary"),
    ],
)
def test_a_question_is_read_for_place_postcode_and_age(
    knowledge: Knowledge, text: str, district: Optional[str], place: Optional[str], outward: Optional[str],
    age: Optional[int], stage: Optional[str],
) -> None:  # fmt: skip
    query, _ = read_query(text, knowledge)
    assert query == Query(district=district, place=place, outward=outward, age=age, stage=stage)


def test_a_full_postcode_is_cut_to_its_outward_code_and_text_speak_is_not_a_postcode(knowledge: Knowledge) -> None:
    areas = knowledge.services.postcode_areas
    assert find_postcode("PR7 9ZZ", areas).outward == "PR7" and find_postcode("pr79zz", areas).was_full
    assert find_postcode("bb111ab", areas).outward == "BB11"
    assert find_postcode("M1 1AE", areas).outward == "M1"  # a full postcode anywhere in the UK
    for not_a_postcode in ["c u l8", "gr8 thanks", "m8 help", "call 0800 1111", "i'm 14"]:
        assert find_postcode(not_a_postcode, areas) is None, not_a_postcode
    query, postcode = read_query("we live at PR7 9ZZ", knowledge)
    assert postcode.was_full and "9ZZ" not in json.dumps(query.to_slot())


def test_ages_and_stages(knowledge: Knowledge) -> None:
    assert find_age("my 3-year-old") == 3 and find_age("14yo") == 3 + 11 and find_age("aged seven") == 7
    assert find_age("my 6 week old") == 0 and find_age("she's 9") == 9
    assert find_age("we're 5 minutes away") is None and find_age("open at 9 am") is None
    assert find_age("my 40 year old brother") is None
    stages = knowledge.services.stages
    assert find_stage("toddler's behaviour", stages).id == "toddler"
    assert find_stage("something for teens", stages).id == "teenager"
    assert find_stage("secondary school kids", stages).id == "secondary"
    assert find_stage("family support", stages) is None


def test_a_follow_up_keeps_what_it_leaves_out() -> None:
    toddler = Query(stage="toddler")
    chorley = Query(district="Chorley", place="Chorley")
    assert merge(chorley, toddler) == Query(district="Chorley", place="Chorley", stage="toddler")
    assert merge(Query(stage="teenager"), chorley) == Query(district="Chorley", place="Chorley", stage="teenager")
    burnley = Query(district="Burnley", place="Burnley")
    assert merge(burnley, Query(district="Chorley", place="Chorley", stage="toddler")) == burnley
    assert merge(Query(), chorley) == chorley


def test_a_slot_value_that_does_not_fit_is_dropped() -> None:
    assert Query.from_slot("Chorley") is None
    assert Query.from_slot({"outward": "PR7 9ZZ", "age": 99, "district": 3}) == Query()
    assert Query.from_slot({"outward": "PR7", "age": 4}) == Query(outward="PR7", age=4)


# ----- matching ---------------------------------------------------------------------------------------------


def test_a_town_gives_its_own_services_first_then_the_district_then_county_wide(
    setting: Path, knowledge: Knowledge
) -> None:
    directory = imported(setting)
    found = names(find_services(directory, knowledge, Query(district="Chorley", place="Chorley")))
    assert found == [
        "Example Family Hub Chorley", "Muddy Boots Forest Club", "Paper Lantern Teen Space",
        "Wobbly Wellies Toddler Group",  # in Chorley itself
        "Bright Sparks Homework Club",  # in Adlington, in Chorley district
        "Example Lancashire Parent Line",  # all of Lancashire
    ]  # fmt: skip


def test_an_outward_code_gives_its_own_services_then_those_of_its_district(
    setting: Path, knowledge: Knowledge
) -> None:
    directory = imported(setting)
    found = names(find_services(directory, knowledge, Query(outward="PR7")))
    assert found[:3] == ["Example Family Hub Chorley", "Muddy Boots Forest Club", "Wobbly Wellies Toddler Group"]
    assert found[3:] == ["Bright Sparks Homework Club", "Paper Lantern Teen Space", "Example Lancashire Parent Line"]


def test_an_age_or_a_stage_keeps_only_services_for_it_closest_first(setting: Path, knowledge: Knowledge) -> None:
    directory = imported(setting)
    toddlers = find_services(directory, knowledge, Query(district="Chorley", place="Chorley", stage="toddler"))
    assert names(toddlers) == [
        "Wobbly Wellies Toddler Group", "Example Family Hub Chorley", "Example Lancashire Parent Line"
    ]  # fmt: skip
    teens = find_services(directory, knowledge, Query(district="Burnley", place="Burnley", stage="teenager"))
    assert names(teens) == ["Lighthouse Example Youth Club", "Example Lancashire Parent Line"]
    baby = find_services(directory, knowledge, Query(district="Burnley", place="Padiham", age=0))
    assert names(baby) == ["Tiny Steps Baby Massage", "Example Lancashire Parent Line"]
    behaviour = find_services(
        directory, knowledge, Query(district="West Lancashire", place="Skelmersdale", stage="toddler")
    )
    assert names(behaviour) == ["Calm Corner Parenting Course", "Example Lancashire Parent Line"]


def test_no_place_no_services(setting: Path, knowledge: Knowledge) -> None:
    assert find_services(imported(setting), knowledge, Query(stage="toddler")) == []


# ----- answers ----------------------------------------------------------------------------------------------


async def test_a_town_gets_three_services_with_phone_website_and_links_then_more(setting: Path) -> None:
    imported(setting)
    messages, events = await run(ActionLocalHelp(), "is there early help in Chorley")
    assert messages[0]["text"] == "I found 6 services near Chorley."
    services = [m for m in messages if m.get("custom")]
    assert len(services) == 3
    first = services[0]
    assert first["text"].splitlines() == [
        "Example Family Hub Chorley",
        "Help for families with children from birth to 19: parenting, health and money advice.",
        "Phone: 01632 960102",
        "Website: https://example.org/family-hub-chorley",
    ]
    assert first["custom"]["links"] == [
        {"type": "tel", "href": "tel:+441632960102", "text": "01632 960102",
         "label": "Call Example Family Hub Chorley, 01632 960102"},
        {"type": "url", "href": "https://example.org/family-hub-chorley", "text": "Website",
         "label": "Website of Example Family Hub Chorley"},
    ]  # fmt: skip
    last = messages[-1]
    assert "https://directory.example.org/api" in last["text"] and f"{NOW.day} {NOW:%B %Y}" in last["text"]
    assert "days old" not in last["text"]
    assert last["buttons"][0] == {"title": "More services", "payload": "/ask_more_services"}
    assert last["buttons"][-1] == {"title": "Talk to a person", "payload": "/ask_human"}
    assert slots(events) == {
        "services_query": {"district": "Chorley", "place": "Chorley"}, "location": "Chorley",
        "services_shown": 3, "last_topic": "services",
    }  # fmt: skip


async def test_more_shows_the_next_three_then_says_that_is_all(setting: Path) -> None:
    imported(setting)
    _, events = await run(ActionLocalHelp(), "is there early help in Chorley")
    messages, events = await run(ActionMoreServices(), "/ask_more_services", "ask_more_services", slots=slots(events))
    assert messages[0]["text"] == "Here are more services near Chorley."
    assert [m["text"].splitlines()[0] for m in messages if m.get("custom")] == [
        "Wobbly Wellies Toddler Group", "Bright Sparks Homework Club", "Example Lancashire Parent Line"
    ]  # fmt: skip
    titles = [b["title"] for b in messages[-1].get("buttons") or []]
    assert "More services" not in titles and "Talk to a person" in titles  # a next step, but no more services
    assert "directory.example.org" in messages[-1]["text"]
    previous = {"services_query": {"district": "Chorley", "place": "Chorley"}, **slots(events)}
    messages, _ = await run(ActionMoreServices(), "more services", "ask_more_services", slots=previous)
    assert "That's all the services I found near Chorley." in texts(messages)


async def test_every_phone_number_shown_is_in_the_feed(setting: Path) -> None:
    imported(setting)
    questions = [
        "is there early help in Chorley", "family support near PR7", "something for teenagers in Burnley",
        "help for my toddler's behaviour in Skelmersdale", "baby groups in padiham", "anything in Preston",
    ]  # fmt: skip
    shown: Set[str] = set()
    for question in questions:
        messages, _ = await run(ActionLocalHelp(), question)
        shown |= {re.sub(r"\D", "", n) for n in PHONE_IN_TEXT.findall(texts(messages))}
        shown |= {re.sub(r"\D", "", link["text"]) for m in messages for link in m.get("custom", {}).get("links", [])
                  if link["type"] == "tel"}  # fmt: skip
    assert shown and shown <= feed_phones()


async def test_a_stage_and_a_postcode(setting: Path) -> None:
    imported(setting)
    messages, _ = await run(ActionLocalHelp(), "help for my toddler's behaviour in Skelmersdale")
    assert messages[0]["text"] == "I found 2 services for toddlers near Skelmersdale."
    assert "Calm Corner Parenting Course" in messages[1]["text"]
    messages, _ = await run(ActionLocalHelp(), "family support near PR7")
    assert messages[0]["text"] == "I found 6 services near PR7."


async def test_a_full_postcode_is_never_kept_or_logged(setting: Path, caplog: pytest.LogCaptureFixture) -> None:
    imported(setting)
    caplog.set_level(logging.DEBUG)
    messages, events = await run(ActionLocalHelp(), "we live at PR7 9ZZ, anything for my 3 year old?")
    assert messages[0]["text"] == "I only use the first part of your postcode: PR7."
    assert messages[1]["text"] == "I found 3 services for a child aged 3 near PR7."
    assert slots(events)["services_query"] == {"outward": "PR7", "age": 3}
    assert "9ZZ" not in json.dumps(events) and "9ZZ" not in caplog.text.upper()


async def test_a_question_without_a_place_asks_for_one_and_keeps_the_stage(setting: Path) -> None:
    imported(setting)
    messages, events = await run(ActionLocalHelp(), "is there anything for my toddler")
    assert "first part of your postcode" in messages[-1]["text"]
    assert "9 Prevention and Early Help Co-ordinators" in texts(messages)
    messages, _ = await run(ActionLocalHelp(), "chorley", slots=slots(events))
    assert messages[0]["text"] == "I found 3 services for toddlers near Chorley."


async def test_nothing_matched_says_so_and_gives_the_county_wide_answer(setting: Path, tmp_path: Path) -> None:
    chorley_only = tmp_path / "feed"
    chorley_only.mkdir()
    for n in (1, 2, 3):
        name = f"f1c710a1-0000-4000-8000-{n:012d}.json"
        shutil.copy(FIXTURES / "good" / "services" / name, chorley_only / name)
    imported(setting, source=chorley_only)
    messages, events = await run(ActionLocalHelp(), "anything for young adults in fleetwood")
    reply = texts(messages)
    assert "I couldn't find a service for young adults near Fleetwood in the directory." in reply
    assert "https://directory.example.org/api" in reply
    assert "9 Prevention and Early Help Co-ordinators" in reply
    assert not PHONE_IN_TEXT.search(reply) and not any(m.get("custom") for m in messages)
    assert slots(events)["last_topic"] == "services"


async def test_a_new_import_shows_in_the_next_answer(setting: Path, tmp_path: Path) -> None:
    imported(setting)
    messages, _ = await run(ActionLocalHelp(), "is there early help in Chorley")
    assert messages[0]["text"] == "I found 6 services near Chorley."
    imported(setting, source=FIXTURES / "good" / "services" / f"f1c710a1-0000-4000-8000-{1:012d}.json", force=True)
    messages, _ = await run(ActionLocalHelp(), "is there early help in Chorley")
    assert messages[0]["text"] == "I found one service near Chorley."


async def test_only_county_wide_services_are_not_passed_off_as_local(setting: Path) -> None:
    imported(setting)
    messages, _ = await run(ActionLocalHelp(), "anything for young adults in fleetwood")
    assert messages[0]["text"] == (
        "I couldn't find a service for young adults in Fleetwood itself. Here is what I found for all of Lancashire."
    )
    assert "Example Lancashire Parent Line" in messages[1]["text"]


async def test_an_old_copy_says_so_plainly(setting: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    imported(setting, days_ago=45)
    messages, _ = await run(ActionLocalHelp(), "is there early help in Chorley")
    assert "My copy is 45 days old, so some details may have changed." in messages[-1]["text"]
    monkeypatch.setenv("SERVICES_MAX_AGE_DAYS", "60")
    messages, _ = await run(ActionLocalHelp(), "is there early help in Chorley")
    assert "days old" not in texts(messages)


async def test_where_does_that_come_from_names_the_directory_and_the_date(setting: Path) -> None:
    imported(setting)
    messages, _ = await run(ActionSource(), "where's that from", "ask_source", slots={"last_topic": "services"})
    assert messages[0]["text"].startswith("They come from the directory at https://directory.example.org/api.")


async def test_without_an_import_or_with_a_broken_store_the_answer_is_as_before(setting: Path) -> None:
    messages, _ = await run(ActionLocalHelp(), "is there early help in Chorley")
    assert "I don't have contact details for Chorley yet" in texts(messages)
    setting.write_text("{ not json", encoding="utf-8")
    store_module._default = None
    messages, _ = await run(ActionLocalHelp(), "is there early help in Chorley")
    assert "I don't have contact details for Chorley yet" in texts(messages)
    messages, _ = await run(ActionMoreServices(), "more services", "ask_more_services")
    assert "I don't have contact details" not in texts(messages) and "9 Prevention" in texts(messages)


async def test_a_link_is_only_ever_built_from_checked_values(setting: Path) -> None:
    directory = imported(setting)
    data = json.loads(setting.read_text())
    for service in data["services"]:
        service["url"] = "javascript:alert(1)"
        for phone in service["phones"]:
            phone["href"] = "tel:0800<script>"
    setting.write_text(json.dumps(data))
    store_module._default = None
    messages, _ = await run(ActionLocalHelp(), "is there early help in Chorley")
    assert len(directory.services) == 10
    assert not any(m.get("custom") for m in messages)
    assert "javascript" not in texts(messages) and "Phone:" not in texts(messages)


def test_the_services_wording_is_plain_english(knowledge: Knowledge) -> None:
    wording = knowledge.services
    samples = [
        wording.found.format(count=4, place="Chorley", for_whom=wording.for_stage.format(name="toddlers")),
        wording.found_one.format(place="PR7", for_whom=wording.for_age.format(age=3)),
        wording.found_countywide.format(place="Fleetwood", for_whom=""),
        wording.more_found.format(place="Chorley", for_whom=""),
        wording.source.format(source="the council", date="1 December 2026"),
        wording.stale.format(days=45), wording.more_left.format(left=2), wording.no_more.format(place="Chorley"),
        wording.none_found.format(place="Fleetwood", for_whom=""), wording.no_place,
        wording.postcode_note.format(outward="PR7"),
    ]  # fmt: skip
    hard = [(text, textstat.flesch_reading_ease(text)) for text in samples if textstat.flesch_reading_ease(text) < 60]
    assert not hard
