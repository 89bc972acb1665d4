"""The feedback conversation: "Please let us know what you think"."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.base import EventType
from actions.feedback_store import save_view
from bot.privacy.redact import redact

logger = logging.getLogger(__name__)

SLOT_ABOUT = "feedback_about"
SLOT_VIEW = "feedback_view"
SLOT_CANCELLED = "feedback_cancelled"
ABOUT_CHOICES = {
    "plan": "the Plan",
    "video": "the video",
    "assistant": "this assistant",
}
ABOUT_WORDS = {
    "plan": "plan", "cypp": "plan", "strategy": "plan",
    "video": "video", "film": "video", "vid": "video",
    "assistant": "assistant", "bot": "assistant", "chatbot": "assistant", "you": "assistant", "chat": "assistant",
}
CANCEL_WORDS = {"cancel", "stop", "quit", "exit", "nevermind", "never mind", "no thanks", "forget it"}


def about_choice(text: str) -> Optional[str]:
    """Maps "the video", "ur bot" or a button's text to plan, video or assistant."""
    words = text.lower().replace("/", " ").split()
    for word in words:
        key = word.strip(".,!?'\"")
        if key in ABOUT_WORDS:
            return ABOUT_WORDS[key]
    return None


def is_cancel(text: str) -> bool:
    """Whether the person wants to stop giving feedback."""
    return text.lower().strip(" .!") in CANCEL_WORDS


class ValidateFeedbackForm(FormValidationAction):
    """Checks what the person chose and what they wrote."""

    def name(self) -> Text:
        """Returns the action's name in the domain."""
        return "validate_feedback_form"

    async def required_slots(
        self, domain_slots: List[Text], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[Text]:
        """Asks nothing more once the person has cancelled."""
        if tracker.get_slot(SLOT_CANCELLED):
            return []
        return domain_slots

    def validate_feedback_about(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """Accepts the Plan, the video or the assistant."""
        text = str(value or "")
        if is_cancel(text):
            return {SLOT_ABOUT: None, SLOT_CANCELLED: True}
        choice = about_choice(text)
        if choice is None:
            dispatcher.utter_message(response="utter_feedback_about_unclear")
            return {SLOT_ABOUT: None}
        return {SLOT_ABOUT: choice}

    def validate_feedback_view(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """Accepts any view that is not empty, unless the person cancels; personal details are removed at once."""
        text = str(value or "").strip()
        if is_cancel(text):
            return {SLOT_VIEW: None, SLOT_CANCELLED: True}
        if not text:
            return {SLOT_VIEW: None}
        return {SLOT_VIEW: redact(text)}


class ActionSaveFeedback(Action):
    """Stores the view (with the time) and thanks the person; or confirms nothing was kept."""

    def name(self) -> Text:
        """Returns the action's name in the domain."""
        return "action_save_feedback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Saves the view in the feedback database."""
        reset = [SlotSet(SLOT_ABOUT, None), SlotSet(SLOT_VIEW, None), SlotSet(SLOT_CANCELLED, None)]
        about = tracker.get_slot(SLOT_ABOUT)
        view = tracker.get_slot(SLOT_VIEW)
        if tracker.get_slot(SLOT_CANCELLED) or not about or not view:
            dispatcher.utter_message(response="utter_feedback_cancelled")
            return reset
        try:
            save_view(str(about), str(view))
        except Exception:  # noqa: BLE001 - tell the person, never break the conversation
            logger.exception("Could not store a feedback view")
            dispatcher.utter_message(response="utter_feedback_not_saved")
            return reset
        dispatcher.utter_message(response="utter_feedback_thanks")
        return reset
