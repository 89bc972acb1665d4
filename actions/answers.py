"""Answers about the Plan, the Trust and the figures, straight from the knowledge file."""

from __future__ import annotations

from typing import List

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.base import EventType, KnowledgeAction, latest_intent, say_lines, say_not_known
from actions.constants import (
    SLOT_CURRENCY_TOLD,
    SLOT_LAST_TOPIC,
    TOPIC_INTENT_PREFIX,
    TOPIC_SERVICES,
    UTTER_NO_SOURCE,
)
from actions.knowledge import Knowledge
from actions.services import current_directory, source_line

# Topics whose first answer is preceded by the note that the Plan is from 2014-17.
CURRENCY_GROUPS = {"plan"}
TOPICS_THAT_ARE_THE_CURRENCY_NOTE = {"up_to_date"}


class ActionAnswerTopic(KnowledgeAction):
    """Answers the topic named by the intent: ``ask_<topic>`` gives topic ``<topic>``.

    Adding a topic to the knowledge file and an ``ask_<topic>`` intent with a rule
    is all it takes to add a question: no Python.
    """

    def name(self) -> str:
        """Returns the action's name in the domain."""
        return "action_answer_topic"

    async def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, knowledge: Knowledge
    ) -> List[EventType]:
        """Sends the topic's answer lines and remembers the topic for follow-ups."""
        intent = latest_intent(tracker) or ""
        topic_id = intent[len(TOPIC_INTENT_PREFIX):] if intent.startswith(TOPIC_INTENT_PREFIX) else ""
        topic = knowledge.topic(topic_id)
        if topic is None:
            say_not_known(dispatcher)
            return []
        events: List[EventType] = []
        currency_told = bool(tracker.get_slot(SLOT_CURRENCY_TOLD))
        if topic_id in TOPICS_THAT_ARE_THE_CURRENCY_NOTE:
            currency_told = True
            events.append(SlotSet(SLOT_CURRENCY_TOLD, True))
        elif topic.group in CURRENCY_GROUPS and not currency_told:
            say_lines(dispatcher, knowledge.answer_lines(knowledge.currency))
            events.append(SlotSet(SLOT_CURRENCY_TOLD, True))
        say_lines(dispatcher, knowledge.answer_lines(topic))
        events.append(SlotSet(SLOT_LAST_TOPIC, topic_id))
        return events


class ActionWhoPays(KnowledgeAction):
    """Answers "who pays for that?" about the last figure."""

    def name(self) -> str:
        """Returns the action's name in the domain."""
        return "action_who_pays"

    async def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, knowledge: Knowledge
    ) -> List[EventType]:
        """Sends who pays for the last topic, or says honestly that it does not know."""
        topic = knowledge.topic(str(tracker.get_slot(SLOT_LAST_TOPIC) or ""))
        if topic is None or topic.paid_by is None:
            say_not_known(dispatcher)
            return []
        say_lines(dispatcher, knowledge.answer_lines(topic.paid_by))
        return []


class ActionSource(KnowledgeAction):
    """Answers "where does that come from?" with the source of the last answer."""

    def name(self) -> str:
        """Returns the action's name in the domain."""
        return "action_source"

    async def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, knowledge: Knowledge
    ) -> List[EventType]:
        """Names the page and quotes the sentence the last answer rests on."""
        last = str(tracker.get_slot(SLOT_LAST_TOPIC) or "")
        directory = current_directory() if last == TOPIC_SERVICES else None
        if directory is not None:  # services from the imported directory: its address and the day it was copied
            dispatcher.utter_message(text=source_line(directory, knowledge))
            return []
        source = knowledge.source_of(last)
        if source is None:
            dispatcher.utter_message(response=UTTER_NO_SOURCE)
            return []
        title, quote = knowledge.source_text(source)
        dispatcher.utter_message(text=f"That comes from {title}.")
        dispatcher.utter_message(text=f"It says: \u201c{quote}\u201d")
        return []
