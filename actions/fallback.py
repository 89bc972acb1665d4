"""The first stage of the two-stage fallback: check the topic the assistant guessed."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.base import EventType, KnowledgeAction
from actions.constants import (
    INTENT_LOCAL_HELP,
    INTENT_OUTCOME_DETAIL,
    INTENT_SOURCE,
    INTENT_WHO_PAYS,
    TOPIC_INTENT_PREFIX,
)
from actions.knowledge import Knowledge

NLU_FALLBACK = "nlu_fallback"
SAFEGUARDING = "safeguarding"
# The helplines given straight away when the assistant is not sure someone is telling it they are unsafe.
SIGNPOSTING_WHEN_UNSURE = "unsure"
# Below this confidence the guess is not worth checking: ask the person to rephrase instead.
MIN_GUESS_CONFIDENCE = 0.2
OUT_OF_SCOPE = "out_of_scope"

# What to call the questions that are not knowledge topics.
OTHER_TITLES = {
    INTENT_OUTCOME_DETAIL: "one of the Plan's outcomes",
    INTENT_LOCAL_HELP: "early help for families",
    INTENT_WHO_PAYS: "who pays for something",
    INTENT_SOURCE: "where an answer comes from",
    "ask_capabilities": "what I can help with",
    "bot_challenge": "whether I am a real person",
}


def guessed_intent(parse_data: Dict[str, Any]) -> Optional[str]:
    """Returns the intent to check with the person: the best guess that is not the fallback.

    Returns None when there is no guess, or when it is too weak to be worth checking.
    """
    ranking = [r for r in parse_data.get("intent_ranking") or [] if r.get("name") != NLU_FALLBACK]
    if not ranking:
        intent = (parse_data.get("intent") or {}).get("name")
        return str(intent) if intent and intent != NLU_FALLBACK else None
    best = max(ranking, key=lambda r: float(r.get("confidence") or 0.0))
    if float(best.get("confidence") or 0.0) < MIN_GUESS_CONFIDENCE:
        return None
    return str(best["name"])


def title_for(intent: str, knowledge: Knowledge) -> Optional[str]:
    """Returns a plain description of an intent, or None when it is not worth checking."""
    if intent.startswith(TOPIC_INTENT_PREFIX):
        topic = knowledge.topic(intent[len(TOPIC_INTENT_PREFIX):])
        if topic:
            return topic.title
    return OTHER_TITLES.get(intent)


class ActionAskAffirmation(KnowledgeAction):
    """Replaces Rasa's "Did you mean 'ask_funding'?" with the topic's plain title."""

    def name(self) -> str:
        """Returns the action's name (Rasa's default action it replaces)."""
        return "action_default_ask_affirmation"

    async def answer(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, knowledge: Knowledge
    ) -> List[EventType]:
        """Asks "Did you want to know about X?" with Yes and No buttons, or asks to rephrase."""
        intent = guessed_intent(tracker.latest_message)
        if intent == SAFEGUARDING:
            # Maybe someone is not safe: give the helplines now, then check. Never just "rephrase".
            dispatcher.utter_message(response="utter_safety_check_intro")
            for helpline in knowledge.helplines_for(SIGNPOSTING_WHEN_UNSURE):
                dispatcher.utter_message(text=helpline.message)
            dispatcher.utter_message(response="utter_safety_check")
            return []
        title = title_for(intent, knowledge) if intent else None
        if intent is None or title is None:
            dispatcher.utter_message(
                response="utter_ask_rephrase",
            )
            return []
        dispatcher.utter_message(
            text=f"Sorry, I'm not sure I understood. Did you want to know about {title}?",
            buttons=[
                {"title": "Yes", "payload": f"/{intent}"},
                {"title": "No", "payload": f"/{OUT_OF_SCOPE}"},
            ],
        )
        return []
