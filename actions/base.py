"""What every knowledge action shares.

The question being answered, sending lines with a next step, tap-to-call helplines, and never
breaking a conversation.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.constants import (
    ACTION_ANSWER_TOPIC,
    CONFIRM_INTENTS,
    INTENT_ACTIONS,
    INTENT_CAPABILITIES,
    SLOT_ANSWER_INTENT,
    SLOT_ANSWER_TEXT,
    TOPIC_INTENT_PREFIX,
    UTTER_CAPABILITIES,
    UTTER_ERROR,
    UTTER_NOT_KNOWN,
)
from actions.knowledge import Helpline, Knowledge, KnowledgeError, Topic, get_knowledge

logger = logging.getLogger(__name__)

EventType = Dict[str, Any]
Button = Dict[str, str]
MAX_BUTTONS = 3


@dataclass
class Question:
    """What is being answered.

    Normally the latest message; after "yes"/"no" to a question the assistant asked, the question
    that was put aside (slots ``answer_intent``/``answer_text``).
    """

    intent: str
    text: str
    entities: List[Dict[str, Any]] = field(default_factory=list)
    pending: bool = False

    def entity(self, name: str) -> Optional[str]:
        """The first value of an entity, if the message has one."""
        value = next((e.get("value") for e in self.entities if e.get("entity") == name), None)
        return str(value) if value else None


def question_of(tracker: Tracker) -> Question:
    """The question this turn answers (see :class:`Question`)."""
    latest = tracker.latest_message or {}
    intent = str((latest.get("intent") or {}).get("name") or "")
    pending = tracker.get_slot(SLOT_ANSWER_INTENT)
    if intent in CONFIRM_INTENTS and pending:
        return Question(str(pending), str(tracker.get_slot(SLOT_ANSWER_TEXT) or ""), [], pending=True)
    return Question(intent, latest_text(tracker), list(latest.get("entities") or []))


def clear_pending() -> List[EventType]:
    """Events that forget the question put aside."""
    return [SlotSet(SLOT_ANSWER_INTENT, None), SlotSet(SLOT_ANSWER_TEXT, None)]


def action_for(intent: str) -> str:
    """The action (or response) that answers an intent."""
    if intent in INTENT_ACTIONS:
        return INTENT_ACTIONS[intent]
    return ACTION_ANSWER_TOPIC if intent.startswith(TOPIC_INTENT_PREFIX) else UTTER_CAPABILITIES


class KnowledgeAction(Action, ABC):
    """An action that answers from the knowledge file.

    Subclasses implement ``answer``. If the knowledge cannot be loaded or the answer
    fails, the person gets an honest "I don't have that", the helplines and what the
    assistant can help with, and the conversation goes on.
    """

    @abstractmethod
    def name(self) -> str:
        """Returns the action's name in the domain."""

    @abstractmethod
    async def answer(self, dispatcher: CollectingDispatcher, tracker: Tracker, knowledge: Knowledge) -> List[EventType]:
        """Sends the answer; returns the events to apply."""

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        """Runs ``answer``, turning any failure into an honest reply with the helplines."""
        try:
            knowledge = get_knowledge()
            return await self.answer(dispatcher, tracker, knowledge)
        except KnowledgeError as error:
            logger.error("%s cannot answer: %s", self.name(), error)
        except Exception:  # noqa: BLE001 - an action must never break the conversation
            logger.exception("%s failed", self.name())
        dispatcher.utter_message(response=UTTER_ERROR)
        dispatcher.utter_message(response=UTTER_CAPABILITIES)
        return []


def say_lines(dispatcher: CollectingDispatcher, lines: List[str], buttons: Optional[List[Button]] = None) -> None:
    """Sends each line as its own short message; the buttons go with the last one."""
    for index, line in enumerate(lines):
        last = index == len(lines) - 1
        if last and buttons:
            dispatcher.utter_message(text=line, buttons=buttons)
        else:
            dispatcher.utter_message(text=line)


def say_not_known(dispatcher: CollectingDispatcher) -> None:
    """Says honestly that the assistant does not have that, then what it can help with."""
    dispatcher.utter_message(response=UTTER_NOT_KNOWN)
    dispatcher.utter_message(response=UTTER_CAPABILITIES)


def topic_payload(knowledge: Knowledge, topic_id: str) -> str:
    """The button payload that asks about a topic."""
    topic = knowledge.topic(topic_id)
    if topic is not None and topic.payload:
        return topic.payload
    return f"/{TOPIC_INTENT_PREFIX}{topic_id}"


def topic_button(knowledge: Knowledge, topic_id: str) -> Optional[Button]:
    """A button asking about a topic (or about local help), if there is such a topic."""
    topic = knowledge.topic(topic_id)
    if topic is not None:
        return {"title": topic.button, "payload": topic_payload(knowledge, topic_id)}
    if topic_id == "local_help":
        return {"title": knowledge.local_help.button, "payload": "/ask_local_help"}
    return None


def next_steps(knowledge: Knowledge, topic: Optional[Topic], source: bool = True) -> List[Button]:
    """Two or three buttons that end an answer: "Tell me more", related topics, the source."""
    buttons: List[Button] = []
    if topic is not None and topic.more:
        buttons.append({"title": knowledge.next_steps.more, "payload": "/ask_more"})
    for related in topic.related if topic is not None else []:
        button = topic_button(knowledge, related)
        if button and len(buttons) < MAX_BUTTONS - (1 if source else 0):
            buttons.append(button)
    if len(buttons) < 2:
        buttons.append({"title": knowledge.next_steps.something_else, "payload": f"/{INTENT_CAPABILITIES}"})
    if source:
        buttons.append({"title": knowledge.next_steps.source, "payload": "/ask_source"})
    return buttons[:MAX_BUTTONS]


def phone_link(knowledge: Knowledge, helpline: Helpline) -> Dict[str, str]:
    """A tap-to-call link for a helpline from the knowledge file (never from what a user typed)."""
    digits = re.sub(r"[^0-9]", "", helpline.number)
    return {"type": "tel", "href": f"tel:{digits}", "text": helpline.number, "label": knowledge.call_name(helpline)}


def say_helplines(dispatcher: CollectingDispatcher, knowledge: Knowledge, helplines: List[Helpline]) -> None:
    """Sends each helpline's message with a tap-to-call link (plain text where links are not shown)."""
    for helpline in helplines:
        dispatcher.utter_message(text=helpline.message, json_message={"links": [phone_link(knowledge, helpline)]})


def latest_intent(tracker: Tracker) -> Optional[str]:
    """Returns the name of the intent of the latest user message."""
    intent = tracker.latest_message.get("intent") or {}
    name = intent.get("name")
    return str(name) if name else None


def latest_entity(tracker: Tracker, entity: str) -> Optional[str]:
    """Returns the first value of an entity in the latest user message."""
    value = next(tracker.get_latest_entity_values(entity), None)
    return str(value) if value else None


def latest_text(tracker: Tracker) -> str:
    """Returns the text of the latest user message ('' for a button payload)."""
    text = tracker.latest_message.get("text") or ""
    return "" if text.startswith("/") else str(text)
