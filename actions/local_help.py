"""Local early help: what the knowledge holds for a district or town, and nothing invented."""

from __future__ import annotations

from typing import List, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.base import EventType, KnowledgeAction, latest_entity, latest_text, say_lines
from actions.constants import ENTITY_LOCATION, SLOT_LAST_TOPIC, SLOT_LOCATION, TOPIC_LOCAL_HELP
from actions.knowledge import Area, Contact, Knowledge, Service


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


class ActionLocalHelp(KnowledgeAction):
    """Answers a family's question about early help, locally when the knowledge file can."""

    def name(self) -> str:
        """Returns the action's name in the domain."""
        return "action_local_help"

    async def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, knowledge: Knowledge
    ) -> List[EventType]:
        """Sends the local answer if the area has entries; otherwise the county-wide one, honestly."""
        place_text: Optional[str] = latest_entity(tracker, ENTITY_LOCATION) or latest_text(tracker)
        found = knowledge.find_area(place_text) if place_text else None
        if found is None and tracker.get_slot(SLOT_LOCATION):
            found = knowledge.find_area(str(tracker.get_slot(SLOT_LOCATION)))
        if found is None:
            say_lines(dispatcher, knowledge.answer_lines(knowledge.local_help))
            dispatcher.utter_message(text=knowledge.local_help.no_place)
            return [SlotSet(SLOT_LAST_TOPIC, TOPIC_LOCAL_HELP)]
        area, place = found
        if area.contacts or area.services:
            say_lines(dispatcher, local_answer(area, place))
            return [SlotSet(SLOT_LAST_TOPIC, f"area:{area.district}"), SlotSet(SLOT_LOCATION, place)]
        say_lines(dispatcher, knowledge.answer_lines(knowledge.local_help))
        dispatcher.utter_message(text=knowledge.local_help.no_local_details.format(place=place))
        return [SlotSet(SLOT_LAST_TOPIC, TOPIC_LOCAL_HELP), SlotSet(SLOT_LOCATION, place)]
