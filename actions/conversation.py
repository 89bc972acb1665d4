"""The conversation around the answers.

Asking for a person, yes and no to a question the assistant asked, and starting the feedback form
with what the Trust asked for.
"""

from __future__ import annotations

from typing import List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.answers import start_buttons
from actions.base import EventType, KnowledgeAction, action_for, latest_text, say_helplines, say_lines
from actions.constants import (
    ACTION_HUMAN,
    ACTION_SAFEGUARDING,
    SLOT_ANSWER_INTENT,
    SLOT_ANSWER_TEXT,
    SLOT_OFFERED_INTENT,
    SLOT_SAFETY_CHECK,
    SLOT_SAFETY_SPEAKER,
    UTTER_ANYTHING_ELSE,
)
from actions.knowledge import Knowledge
from actions.safeguarding import reset_check


def speaker_of(text: str) -> str:
    """``adult`` when an adult seems to be talking about a child (the safety net's word list)."""
    from bot.nlp.safety.load import load_matcher

    try:
        return load_matcher().speaker(text)
    except Exception:  # noqa: BLE001 - without the word list, speak to a child
        return "child"


class ActionHuman(KnowledgeAction):
    """Asking for a real person: the honest answer, and the national lines for who is talking."""

    def name(self) -> str:
        """Returns the action's name in the domain."""
        return ACTION_HUMAN

    async def answer(self, dispatcher: CollectingDispatcher, tracker: Tracker, knowledge: Knowledge) -> List[EventType]:
        """Says there is no live chat, then Childline (a child) or the NSPCC (an adult), tap to call."""
        say_lines(dispatcher, list(knowledge.human.answer))
        speaker = str(tracker.get_slot(SLOT_SAFETY_SPEAKER) or speaker_of(latest_text(tracker)))
        wanted = ["nspcc", "childline"] if speaker == "adult" else ["childline", "nspcc"]
        helplines = [h for h in (knowledge.helpline(i) for i in wanted) if h is not None]
        say_helplines(dispatcher, knowledge, helplines)
        dispatcher.utter_message(response="utter_human_next", buttons=start_buttons(knowledge)[:3])
        return []


class ActionAffirm(Action):
    """The answer "yes" to the assistant's last question: the safety check, or "did you mean ...?"."""

    def name(self) -> str:
        """Returns the action's name in the domain."""
        return "action_affirm"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        """Gives the full safety reply, answers the offered topic, or asks what else."""
        if tracker.get_slot(SLOT_SAFETY_CHECK):
            return [FollowupAction(ACTION_SAFEGUARDING)]
        offered = tracker.get_slot(SLOT_OFFERED_INTENT)
        if offered:
            return [
                SlotSet(SLOT_OFFERED_INTENT, None),
                SlotSet(SLOT_ANSWER_INTENT, offered),
                SlotSet(SLOT_ANSWER_TEXT, tracker.get_slot(SLOT_ANSWER_TEXT)),
                FollowupAction(action_for(str(offered))),
            ]
        dispatcher.utter_message(response=UTTER_ANYTHING_ELSE, buttons=_start(dispatcher))
        return []


class ActionDeny(Action):
    """The answer "no" to the assistant's last question: the safety check, or "did you mean ...?"."""

    def name(self) -> str:
        """Returns the action's name in the domain."""
        return "action_deny"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        """After the check: thanks, then the question that was asked. After an offer: the topics."""
        if tracker.get_slot(SLOT_SAFETY_CHECK):
            dispatcher.utter_message(response="utter_safety_check_no")
            pending = tracker.get_slot(SLOT_ANSWER_INTENT)
            if pending:
                return [*reset_check(), FollowupAction(action_for(str(pending)))]
            dispatcher.utter_message(response=UTTER_ANYTHING_ELSE, buttons=_start(dispatcher))
            return reset_check()
        if tracker.get_slot(SLOT_OFFERED_INTENT):
            dispatcher.utter_message(response="utter_offer_declined", buttons=_start(dispatcher, with_help=True))
            return [SlotSet(SLOT_OFFERED_INTENT, None), SlotSet(SLOT_ANSWER_TEXT, None)]
        dispatcher.utter_message(response=UTTER_ANYTHING_ELSE, buttons=_start(dispatcher))
        return []


def _start(dispatcher: CollectingDispatcher, with_help: bool = False) -> List[dict]:
    """The topic buttons (and, after a miss, feedback and a person), or [] without the knowledge file."""
    from actions.knowledge import KnowledgeError, get_knowledge

    try:
        knowledge = get_knowledge()
    except KnowledgeError:
        return []
    buttons = start_buttons(knowledge)
    if with_help:
        buttons = buttons[:3] + help_buttons(knowledge)
    return buttons


def help_buttons(knowledge: Knowledge) -> List[dict]:
    """The buttons "Give feedback" and "Talk to a person"."""
    feedback = knowledge.topic("feedback")
    return [
        {"title": feedback.button if feedback else "Give feedback", "payload": "/give_feedback"},
        {"title": knowledge.human_button, "payload": "/ask_human"},
    ]


class ActionStartFeedback(KnowledgeAction):
    """Starts the feedback form with what the Trust asked for (the knowledge topic ``feedback``)."""

    def name(self) -> str:
        """Returns the action's name in the domain."""
        return "action_start_feedback"

    async def answer(self, dispatcher: CollectingDispatcher, tracker: Tracker, knowledge: Knowledge) -> List[EventType]:
        """Says the Trust asks for views (from the knowledge file); the form and its privacy note follow."""
        topic = knowledge.topic("feedback")
        if topic is not None:
            say_lines(dispatcher, knowledge.answer_lines(topic))
        return [SlotSet("last_topic", "feedback")]
