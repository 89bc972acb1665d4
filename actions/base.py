"""What every knowledge action shares: loading the knowledge, and never breaking a conversation."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Any, Dict, List, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.constants import UTTER_CAPABILITIES, UTTER_NOT_KNOWN
from actions.knowledge import Knowledge, KnowledgeError, get_knowledge

logger = logging.getLogger(__name__)

EventType = Dict[str, Any]


class KnowledgeAction(Action, ABC):
    """An action that answers from the knowledge file.

    Subclasses implement ``answer``. If the knowledge cannot be loaded or the answer
    fails, the person gets an honest "I don't have that" and the list of what the
    assistant can help with, and the conversation goes on.
    """

    @abstractmethod
    def name(self) -> str:
        """Returns the action's name in the domain."""

    @abstractmethod
    async def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, knowledge: Knowledge
    ) -> List[EventType]:
        """Sends the answer; returns the events to apply."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Runs ``answer``, turning any failure into an honest reply."""
        try:
            knowledge = get_knowledge()
            return await self.answer(dispatcher, tracker, knowledge)
        except KnowledgeError as error:
            logger.error("%s cannot answer: %s", self.name(), error)
        except Exception:  # noqa: BLE001 - an action must never break the conversation
            logger.exception("%s failed", self.name())
        say_not_known(dispatcher)
        return []


def say_lines(dispatcher: CollectingDispatcher, lines: List[str]) -> None:
    """Sends each line as its own short message."""
    for line in lines:
        dispatcher.utter_message(text=line)


def say_not_known(dispatcher: CollectingDispatcher) -> None:
    """Says honestly that the assistant does not have that, then what it can help with."""
    dispatcher.utter_message(response=UTTER_NOT_KNOWN)
    dispatcher.utter_message(response=UTTER_CAPABILITIES)


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
