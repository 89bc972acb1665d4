"""When the assistant did not understand.

Offer what it guessed, never the same words twice in a row, and after a second miss, the topics,
feedback and a way to a person.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from rasa_sdk import Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.answers import answer_detail, detail_topic, last_topic, start_buttons
from actions.base import EventType, KnowledgeAction, latest_text
from actions.constants import (
    ACTION_FALLBACK,
    ACTION_SOURCE,
    ACTION_TELL_MORE,
    DETAIL_INTENTS,
    INTENT_LOCAL_HELP,
    INTENT_OUTCOME_DETAIL,
    INTENT_SOURCE,
    NLU_FALLBACK,
    SLOT_ANSWER_TEXT,
    SLOT_OFFERED_INTENT,
    TOPIC_INTENT_PREFIX,
)
from actions.conversation import help_buttons
from actions.knowledge import Knowledge

SAFEGUARDING = "safeguarding"
SECOND_OPINION = "second_opinion"
# Below this confidence the classifier's own guess is not worth offering.
MIN_GUESS_CONFIDENCE = 0.3
# A detail intent this likely, after an answer, makes an unsure message a follow-up.
MIN_FOLLOW_UP_CONFIDENCE = 0.15
NOT_OFFERED = {NLU_FALLBACK, SAFEGUARDING, "out_of_scope", "greet", "goodbye", "thank", "affirm", "deny", "complain"}
FALLBACK_ACTIONS = {ACTION_FALLBACK, "action_default_fallback"}


def guessed_intent(parse_data: Dict[str, Any]) -> Optional[str]:
    """The intent to offer: the second opinion's, else the classifier's best guess if it is likely enough."""
    opinion = parse_data.get(SECOND_OPINION)
    if isinstance(opinion, dict) and opinion.get("intent") not in NOT_OFFERED:
        return str(opinion["intent"])
    ranking = [r for r in parse_data.get("intent_ranking") or [] if r.get("name") not in NOT_OFFERED]
    if not ranking:
        return None
    best = max(ranking, key=lambda r: float(r.get("confidence") or 0.0))
    return str(best["name"]) if float(best.get("confidence") or 0.0) >= MIN_GUESS_CONFIDENCE else None


def title_for(intent: str, knowledge: Knowledge) -> Optional[str]:
    """A plain description of what an intent asks, or None when it is not worth offering."""
    if intent == INTENT_LOCAL_HELP:
        return knowledge.local_help_title
    if intent == INTENT_OUTCOME_DETAIL:
        return knowledge.topic("outcomes").title if knowledge.topic("outcomes") else None  # type: ignore[union-attr]
    if intent == INTENT_SOURCE:
        return None
    if intent.startswith(TOPIC_INTENT_PREFIX):
        topic = knowledge.topic(intent[len(TOPIC_INTENT_PREFIX) :])
        return topic.title if topic else None
    return None


def follow_up_kind(tracker: Tracker, knowledge: Knowledge) -> Optional[Tuple[str, str]]:
    """(topic, kind) when a message the classifier was unsure of reads as a follow-up to the last answer.

    "Date of the estimate?" after the number of children: the cue words say which detail, or the
    classifier's own ranking has a detail intent among its guesses.
    """
    last = last_topic(tracker)
    if not last or knowledge.topic(last) is None:
        return None
    text = tidy_latest(tracker)
    kind = knowledge.detail_in_text(text) if text else None
    if kind is None:
        ranking = tracker.latest_message.get("intent_ranking") or []
        details = [r for r in ranking if r.get("name") in DETAIL_INTENTS]
        best = max(details, key=lambda r: float(r.get("confidence") or 0.0), default=None)
        if best is not None and float(best.get("confidence") or 0.0) >= MIN_FOLLOW_UP_CONFIDENCE:
            kind = DETAIL_INTENTS[str(best["name"])]
    return (detail_topic(knowledge, text, last), kind) if kind else None


def tidy_latest(tracker: Tracker) -> str:
    """The latest message with text-speak and spelling tidied, as the classifier read it."""
    return str(tracker.latest_message.get("normalised_text") or latest_text(tracker))


def missed_just_before(tracker: Tracker) -> bool:
    """Whether the assistant's reply to the previous message was a fallback too."""
    users = 0
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            users += 1
            if users == 2:
                return False
        elif users == 1 and event.get("event") == "action" and event.get("name") in FALLBACK_ACTIONS:
            return True
    return False


class ActionFallback(KnowledgeAction):
    """The assistant's reply when it did not understand (replaces Rasa's two-stage fallback)."""

    def name(self) -> str:
        """Returns the action's name in the domain."""
        return ACTION_FALLBACK

    async def answer(self, dispatcher: CollectingDispatcher, tracker: Tracker, knowledge: Knowledge) -> List[EventType]:
        """First miss: offer the best guess, or ask to say it another way; second miss: topics and help."""
        follow_up = follow_up_kind(tracker, knowledge)
        if follow_up is not None:
            return answer_detail(dispatcher, knowledge, *follow_up)
        if knowledge.topic(last_topic(tracker)) is not None:
            if knowledge.asks_for_source(tidy_latest(tracker)):
                return [FollowupAction(ACTION_SOURCE)]
            if knowledge.asks_for_more(tidy_latest(tracker)):
                return [FollowupAction(ACTION_TELL_MORE)]
        if missed_just_before(tracker):
            dispatcher.utter_message(response="utter_fallback_again")
            dispatcher.utter_message(
                response="utter_fallback_help", buttons=start_buttons(knowledge)[:3] + help_buttons(knowledge)
            )
            return [SlotSet(SLOT_OFFERED_INTENT, None)]
        intent = guessed_intent(tracker.latest_message)
        title = title_for(intent, knowledge) if intent else None
        if intent and title:
            dispatcher.utter_message(
                text=knowledge.next_steps.offer.format(title=title),
                buttons=[
                    {"title": knowledge.next_steps.offer_yes, "payload": "/affirm"},
                    {"title": knowledge.next_steps.offer_no, "payload": "/deny"},
                ],
            )
            return [SlotSet(SLOT_OFFERED_INTENT, intent), SlotSet(SLOT_ANSWER_TEXT, latest_text(tracker))]
        dispatcher.utter_message(response="utter_fallback_rephrase", buttons=start_buttons(knowledge))
        return [SlotSet(SLOT_OFFERED_INTENT, None)]


class ActionDefaultFallback(ActionFallback):
    """Rasa's core fallback (no rule applies): the same reply as an NLU miss."""

    def name(self) -> str:
        """Returns the action's name (Rasa's default action it replaces)."""
        return "action_default_fallback"
