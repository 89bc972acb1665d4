"""The safety reply: calm words and the national helplines, whenever the safety net fires."""

from __future__ import annotations

import logging
from typing import List, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.base import EventType
from actions.knowledge import get_knowledge

logger = logging.getLogger(__name__)

ADULT_WORRIED = "adult_worried_about_child"
SAFETY_NET_KEY = "safety_net"


def safety_category(tracker: Tracker) -> Optional[str]:
    """Returns the kind of worry the safety net recorded on the latest message, if any."""
    found = tracker.latest_message.get(SAFETY_NET_KEY) or {}
    category = found.get("category") if isinstance(found, dict) else None
    return str(category) if category else None


class ActionSafeguarding(Action):
    """Signposts to help at once. It never asks questions first and never gives Lancashire facts."""

    def name(self) -> str:
        """Returns the action's name in the domain."""
        return "action_safeguarding"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Sends the warm opening, the helplines for this kind of worry, and the closing words.

        If the knowledge file cannot be read, the helplines still go out, from the
        domain's fixed copy: a safety reply never fails.
        """
        category = safety_category(tracker)
        opening = "utter_safety_adult_intro" if category == ADULT_WORRIED else "utter_safety_intro"
        dispatcher.utter_message(response=opening)
        try:
            helplines = get_knowledge().helplines_for(category)
        except Exception:  # noqa: BLE001 - the safety reply must go out whatever happens
            logger.exception("action_safeguarding could not read the helplines; using the fixed copy")
            dispatcher.utter_message(response="utter_safety_fallback_helplines")
        else:
            for helpline in helplines:
                dispatcher.utter_message(text=helpline.message)
        dispatcher.utter_message(response="utter_safety_outro")
        return []
