"""Local early help: services from the council's imported directory, or what the knowledge file holds.

With an imported directory (``make import-services``), a question naming a town, a district, a postcode
or an age gets at most three matching services, best first, each with its phone and website (also sent
as links the widget renders), then a "More services" button for the next three. Every such answer names
the directory's address and the day it was copied, and says plainly when that copy is old. When nothing
matches it says so and gives the county-wide answer. Without an import, the answers are the ones the
knowledge file alone can give, as before.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.base import MAX_BUTTONS, EventType, KnowledgeAction, latest_entity, latest_text, say_lines, topic_button
from actions.constants import (
    ENTITY_LOCATION,
    INTENT_MORE_SERVICES,
    SLOT_LAST_TOPIC,
    SLOT_LOCATION,
    SLOT_SERVICES_QUERY,
    SLOT_SERVICES_SHOWN,
    TOPIC_LOCAL_HELP,
    TOPIC_SERVICES,
)
from actions.knowledge import Area, Contact, Knowledge, Service
from actions.services import (
    COUNTYWIDE_TIER,
    PAGE_SIZE,
    Query,
    current_directory,
    find_ranked,
    find_services,
    for_whom,
    merge,
    read_query,
    service_lines_and_links,
    source_line,
)
from bot.directory.model import Directory


def contact_lines(contact: Contact) -> List[str]:
    """Describes a local contact, giving only the fields the knowledge file holds."""
    details = [
        ("Phone", contact.phone),
        ("Email", contact.email),
        ("Website", contact.url),
        ("Address", contact.address),
        ("Opening hours", contact.opening_hours),
    ]
    lines = [contact.name] + [f"{label}: {value}" for label, value in details if value]
    return ["\n".join(lines)]


def service_lines(service: Service) -> List[str]:
    """Describes a local service and its contact, if the knowledge file has one."""
    lines = [f"{service.name}: {service.description}"]
    if service.contact:
        lines += contact_lines(service.contact)
    return lines


def local_answer(area: Area, place: str) -> List[str]:
    """The answer for an area that has its own entries in the knowledge file."""
    lines = [f"Here is what I know about early help in {place} ({area.district})."]
    for service in area.services:
        lines += service_lines(service)
    for contact in area.contacts:
        lines += contact_lines(contact)
    return lines


def help_steps(knowledge: Knowledge, first: Optional[Dict[str, str]] = None) -> List[Dict[str, str]]:
    """Next steps after an answer about local help: what else the assistant knows, and a person."""
    buttons = [first] if first else []
    buttons += [b for b in (topic_button(knowledge, t) for t in knowledge.local_help.related) if b]
    person = {"title": knowledge.human_button, "payload": "/ask_human"}
    return [*buttons[: MAX_BUTTONS - 1], person]


def knowledge_answer(dispatcher: CollectingDispatcher, tracker: Tracker, knowledge: Knowledge) -> List[EventType]:
    """The answer from the knowledge file alone: its entries for the area, or the county-wide one, honestly."""
    place_text: Optional[str] = latest_entity(tracker, ENTITY_LOCATION) or latest_text(tracker)
    found = knowledge.find_area(place_text) if place_text else None
    if found is None and tracker.get_slot(SLOT_LOCATION):
        found = knowledge.find_area(str(tracker.get_slot(SLOT_LOCATION)))
    if found is None:
        say_lines(dispatcher, knowledge.answer_lines(knowledge.local_help))
        dispatcher.utter_message(text=knowledge.local_help.no_place, buttons=help_steps(knowledge))
        return [SlotSet(SLOT_LAST_TOPIC, TOPIC_LOCAL_HELP)]
    area, place = found
    if area.contacts or area.services:
        say_lines(dispatcher, local_answer(area, place), help_steps(knowledge))
        return [SlotSet(SLOT_LAST_TOPIC, f"area:{area.district}"), SlotSet(SLOT_LOCATION, place)]
    say_lines(dispatcher, knowledge.answer_lines(knowledge.local_help))
    no_details = knowledge.local_help.no_local_details.format(place=place)
    dispatcher.utter_message(text=no_details, buttons=help_steps(knowledge))
    return [SlotSet(SLOT_LAST_TOPIC, TOPIC_LOCAL_HELP), SlotSet(SLOT_LOCATION, place)]


def show_page(
    dispatcher: CollectingDispatcher,
    knowledge: Knowledge,
    directory: Directory,
    query: Query,
    matches: List[Any],
    start: int,
    countywide_only: bool = False,
) -> int:
    """Sends up to three services from ``start``, then the source (and the "More services" button).

    Returns:
        How many of the matches have been shown after this page.
    """
    wording = knowledge.services
    page = matches[start : start + PAGE_SIZE]
    whom, place = for_whom(query, knowledge), query.place_label()
    if start == 0:
        header = wording.found_one if len(matches) == 1 else wording.found
        if countywide_only:  # none in the place itself: say so, and what the county-wide ones are
            header = wording.found_countywide
        dispatcher.utter_message(text=header.format(count=len(matches), place=place, for_whom=whom))
    else:
        dispatcher.utter_message(text=wording.more_found.format(place=place, for_whom=whom))
    for service in page:
        text, links = service_lines_and_links(service, knowledge)
        if links:
            dispatcher.utter_message(text=text, json_message={"links": links})
        else:
            dispatcher.utter_message(text=text)
    shown = start + len(page)
    closing = source_line(directory, knowledge)
    left = len(matches) - shown
    if left > 0:
        more = {"title": wording.more_button, "payload": f"/{INTENT_MORE_SERVICES}"}
        text = f"{closing} {wording.more_left.format(left=left)}"
        dispatcher.utter_message(text=text, buttons=help_steps(knowledge, first=more))
    else:
        dispatcher.utter_message(text=closing, buttons=help_steps(knowledge))
    return shown


def directory_answer(
    dispatcher: CollectingDispatcher, tracker: Tracker, knowledge: Knowledge, directory: Directory
) -> List[EventType]:
    """The answer from the imported directory: matching services, or honestly none and the county-wide answer."""
    wording = knowledge.services
    new, postcode = read_query(latest_text(tracker), knowledge, latest_entity(tracker, ENTITY_LOCATION))
    query = merge(new, Query.from_slot(tracker.get_slot(SLOT_SERVICES_QUERY)))
    if not query.has_place() and tracker.get_slot(SLOT_LOCATION):
        known = knowledge.find_area(str(tracker.get_slot(SLOT_LOCATION)))
        if known:
            query = merge(Query(district=known[0].district, place=known[1]), query)
    if postcode and postcode.was_full:
        dispatcher.utter_message(text=wording.postcode_note.format(outward=postcode.outward))
    events: List[EventType] = [SlotSet(SLOT_SERVICES_QUERY, query.to_slot())]
    if query.place:
        events.append(SlotSet(SLOT_LOCATION, query.place))
    if not query.has_place():
        say_lines(dispatcher, knowledge.answer_lines(knowledge.local_help))
        dispatcher.utter_message(text=wording.no_place, buttons=help_steps(knowledge))
        return [*events, SlotSet(SLOT_SERVICES_SHOWN, 0), SlotSet(SLOT_LAST_TOPIC, TOPIC_LOCAL_HELP)]
    ranked = find_ranked(directory, knowledge, query)
    matches = [service for _, service in ranked]
    if matches:
        countywide_only = all(tier == COUNTYWIDE_TIER for tier, _ in ranked)
        shown = show_page(dispatcher, knowledge, directory, query, matches, 0, countywide_only)
        return [*events, SlotSet(SLOT_SERVICES_SHOWN, shown), SlotSet(SLOT_LAST_TOPIC, TOPIC_SERVICES)]
    none = wording.none_found.format(place=query.place_label(), for_whom=for_whom(query, knowledge))
    dispatcher.utter_message(text=f"{none} {source_line(directory, knowledge)}")
    area = next((a for a in knowledge.areas if a.district == query.district), None)
    if area and (area.contacts or area.services):
        say_lines(dispatcher, local_answer(area, query.place or area.district), help_steps(knowledge))
    else:
        say_lines(dispatcher, knowledge.answer_lines(knowledge.local_help), help_steps(knowledge))
    return [*events, SlotSet(SLOT_SERVICES_SHOWN, 0), SlotSet(SLOT_LAST_TOPIC, TOPIC_SERVICES)]


class ActionLocalHelp(KnowledgeAction):
    """Answers a family's question about early help: from the imported directory if there is one."""

    def name(self) -> str:
        """Returns the action's name in the domain."""
        return "action_local_help"

    async def answer(self, dispatcher: CollectingDispatcher, tracker: Tracker, knowledge: Knowledge) -> List[EventType]:
        """Sends matching services from the directory; without a directory, the knowledge file's answer."""
        directory = current_directory()
        if directory is None:
            return knowledge_answer(dispatcher, tracker, knowledge)
        return directory_answer(dispatcher, tracker, knowledge, directory)


class ActionMoreServices(KnowledgeAction):
    """Shows the next three services of the last directory answer ("More services")."""

    def name(self) -> str:
        """Returns the action's name in the domain."""
        return "action_more_services"

    async def answer(self, dispatcher: CollectingDispatcher, tracker: Tracker, knowledge: Knowledge) -> List[EventType]:
        """Sends the next page, says when there are no more, or asks for a place if there was no search."""
        directory = current_directory()
        if directory is None:
            return knowledge_answer(dispatcher, tracker, knowledge)
        query = Query.from_slot(tracker.get_slot(SLOT_SERVICES_QUERY))
        if query is None or not query.has_place():
            dispatcher.utter_message(text=knowledge.services.no_place, buttons=help_steps(knowledge))
            return []
        shown = _count(tracker.get_slot(SLOT_SERVICES_SHOWN))
        matches = find_services(directory, knowledge, query)
        if shown >= len(matches):
            no_more = knowledge.services.no_more.format(place=query.place_label())
            dispatcher.utter_message(
                text=f"{no_more} {source_line(directory, knowledge)}", buttons=help_steps(knowledge)
            )
            return [SlotSet(SLOT_LAST_TOPIC, TOPIC_SERVICES)]
        shown = show_page(dispatcher, knowledge, directory, query, matches, shown)
        return [SlotSet(SLOT_SERVICES_SHOWN, shown), SlotSet(SLOT_LAST_TOPIC, TOPIC_SERVICES)]


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return max(0, int(value))
