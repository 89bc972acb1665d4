"""The safety reply and the gentle check: kind words and the national helplines, at once.

The safety net (bot/nlp/safety/) records on the message what it found (``safety_net``):

- a clear **disclosure**: the full safety reply: warm words, the helplines for who is talking
  (a child: 999 and Childline first; an adult worried about a child: the NSPCC, 999, then
  Childline), any this kind of danger adds (e.g. Samaritans), and that a person can help;
- a **risk**: the same helplines at once, then a gentle check: "Is someone being hurt, or in
  danger?" with Yes and No. "Yes" gives the full reply; "No" is acknowledged and the question
  the person asked is answered (``actions/conversation.py``).

Nothing here asks questions before giving the helplines, and nothing here gives Lancashire
facts. If the knowledge file cannot be read, the helplines still go out from the domain's copy.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.base import EventType, say_helplines
from actions.constants import (
    ACTION_SAFEGUARDING,
    SLOT_ANSWER_INTENT,
    SLOT_ANSWER_TEXT,
    SLOT_SAFETY_CATEGORY,
    SLOT_SAFETY_CHECK,
    SLOT_SAFETY_SPEAKER,
)
from actions.knowledge import get_knowledge

logger = logging.getLogger(__name__)

SAFETY_NET_KEY = "safety_net"
DISCLOSURE = "disclosure"
RISK = "risk"
ADULT = "adult"
CHILD = "child"


def safety_found(tracker: Tracker) -> Dict[str, Any]:
    """What the safety net recorded on the latest message ({} for a button or nothing)."""
    found = tracker.latest_message.get(SAFETY_NET_KEY) or {}
    return found if isinstance(found, dict) else {}


def reset_check() -> List[EventType]:
    """Events that close a gentle check."""
    return [SlotSet(SLOT_SAFETY_CHECK, False), SlotSet(SLOT_SAFETY_SPEAKER, None), SlotSet(SLOT_SAFETY_CATEGORY, None)]


class ActionSafeguarding(Action):
    """The full safety reply, or the helplines and a gentle check (see the module docstring)."""

    def name(self) -> str:
        """Returns the action's name in the domain."""
        return ACTION_SAFEGUARDING

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        """Sends the reply the safety net asked for; a "Yes" to the check gives the full reply."""
        found = safety_found(tracker)
        speaker = str(found.get("speaker") or tracker.get_slot(SLOT_SAFETY_SPEAKER) or CHILD)
        level = found.get("level") or DISCLOSURE  # a "Yes" button, or the intent without the net
        extra = list(found.get("helplines") or [])
        urgent = bool(found.get("urgent"))
        if level == RISK:
            return self._check(dispatcher, tracker, found, speaker, extra, urgent)
        opening = "utter_safety_adult_intro" if speaker == ADULT else "utter_safety_intro"
        dispatcher.utter_message(response=opening)
        self._helplines(dispatcher, speaker, extra, urgent)
        dispatcher.utter_message(response="utter_safety_outro")
        return [*reset_check(), SlotSet(SLOT_ANSWER_INTENT, None), SlotSet(SLOT_ANSWER_TEXT, None)]

    def _check(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        found: Dict[str, Any],
        speaker: str,
        extra: List[str],
        urgent: bool,
    ) -> List[EventType]:
        dispatcher.utter_message(
            response="utter_safety_check_adult_intro" if speaker == ADULT else "utter_safety_check_intro"
        )
        self._helplines(dispatcher, speaker, extra, urgent)
        dispatcher.utter_message(response="utter_safety_check")
        then: Optional[Dict[str, Any]] = found.get("then") if isinstance(found.get("then"), dict) else None
        text = str(tracker.latest_message.get("text") or "")
        return [
            SlotSet(SLOT_SAFETY_CHECK, True),
            SlotSet(SLOT_SAFETY_SPEAKER, speaker),
            SlotSet(SLOT_SAFETY_CATEGORY, found.get("category")),
            SlotSet(SLOT_ANSWER_INTENT, then.get("intent") if then else None),
            SlotSet(SLOT_ANSWER_TEXT, text if then else None),
        ]

    @staticmethod
    def _helplines(dispatcher: CollectingDispatcher, speaker: str, extra: List[str], urgent: bool) -> None:
        try:
            knowledge = get_knowledge()
            helplines = knowledge.helplines_for(speaker, extra, urgent)
        except Exception:  # noqa: BLE001 - the safety reply must go out whatever happens
            logger.exception("action_safeguarding could not read the helplines; using the fixed copy")
            dispatcher.utter_message(response="utter_safety_fallback_helplines")
            return
        say_helplines(dispatcher, knowledge, helplines)
