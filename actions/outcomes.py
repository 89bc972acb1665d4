"""Answers about one of the Plan's outcomes: by name ("being healthy") or by position ("the third one")."""

from __future__ import annotations

import re
from typing import List, Optional, Tuple

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.base import EventType, KnowledgeAction, Question, clear_pending, next_steps, question_of, say_lines
from actions.constants import ACTION_OUTCOME_DETAIL, ENTITY_OUTCOME, SLOT_LAST_TOPIC, TOPIC_OUTCOME_PREFIX
from actions.knowledge import Knowledge, Outcome

ORDINAL_WORDS = {
    "first": 1,
    "1st": 1,
    "one": 1,
    "second": 2,
    "2nd": 2,
    "two": 2,
    "third": 3,
    "3rd": 3,
    "three": 3,
    "fourth": 4,
    "4th": 4,
    "four": 4,
    "forth": 4,
    "fifth": 5,
    "5th": 5,
    "five": 5,
}
LAST_WORDS = {"last", "final"}
# Words that, with an outcome named, still ask for the whole list ("what are all five outcomes").
LIST_WORDS = {"all", "list", "every", "each", "them"}
CARDINALS = {"one", "two", "three", "four", "five"}
_WORD = re.compile(r"[a-z0-9]+")


def ordinal_in(text: str, count: int) -> Optional[int]:
    """Finds the position a message points at: "the third one", "number 2", "#5", "the last one".

    Args:
        text: the user's message.
        count: how many outcomes there are (for "the last one").

    Returns:
        A 1-based position, or None.
    """
    words = _WORD.findall(text.lower())
    for word in words:
        if word in LAST_WORDS:
            return count
        if word.isdigit() and 1 <= int(word) <= count:
            return int(word)
        # "one" on its own is too common ("tell me more about that one"): only count it after "number"
        if word in ORDINAL_WORDS and word not in {"one"}:
            return ORDINAL_WORDS[word]
    for before, word in zip(words, words[1:]):
        if before in {"number", "no", "outcome"} and word in ORDINAL_WORDS:
            return ORDINAL_WORDS[word]
    return None


def find_outcome(question: Question, knowledge: Knowledge) -> Optional[Tuple[int, Outcome]]:
    """Finds the outcome a question is about: entity first, then the words, then a position."""
    entity = question.entity(ENTITY_OUTCOME)
    text = question.text
    for phrase in (entity, text):
        if phrase:
            found = knowledge.find_outcome(phrase)
            if found:
                return found
    position = ordinal_in(text, len(knowledge.outcomes))
    if position is not None:
        outcome = knowledge.outcome_by_number(position)
        if outcome is not None:
            return position, outcome
    return None


def one_outcome_named(question: Question, knowledge: Knowledge) -> bool:
    """Whether a question about the outcomes is about one of them: named, or by its place in the list.

    "Is being happy one of the outcomes?", "What's the fourth outcome?", "outcome 2?" are;
    "What are the five outcomes?" and "list all the outcomes" are not.
    """
    words = set(_WORD.findall(question.text.lower()))
    if words & LIST_WORDS:
        return False
    if question.entity(ENTITY_OUTCOME) or knowledge.find_outcome(question.text):
        return True
    position = ordinal_in(question.text, len(knowledge.outcomes))
    strict = words & (set(ORDINAL_WORDS) - CARDINALS) or words & LAST_WORDS
    after = re.search(r"\b(?:number|outcome|no)\s*(?:\d|one|two|three|four|five)\b", question.text.lower())
    return position is not None and bool(strict or after)


class ActionOutcomeDetail(KnowledgeAction):
    """Explains one outcome, or asks which one when the message does not say."""

    def name(self) -> str:
        """Returns the action's name in the domain."""
        return ACTION_OUTCOME_DETAIL

    async def answer(self, dispatcher: CollectingDispatcher, tracker: Tracker, knowledge: Knowledge) -> List[EventType]:
        """Sends what the knowledge says about the outcome, or the list to choose from."""
        question = question_of(tracker)
        events: List[EventType] = clear_pending() if question.pending else []
        found = find_outcome(question, knowledge)
        if found is None:
            dispatcher.utter_message(response="utter_which_outcome")
            dispatcher.utter_message(text=knowledge.outcome_list(), buttons=outcome_buttons(knowledge))
            return [*events, SlotSet(SLOT_LAST_TOPIC, "outcomes")]
        number, outcome = found
        say_lines(
            dispatcher, knowledge.outcome_lines(number, outcome), next_steps(knowledge, knowledge.topic("outcomes"))
        )
        return [*events, SlotSet(SLOT_LAST_TOPIC, f"{TOPIC_OUTCOME_PREFIX}{outcome.id}")]


def outcome_buttons(knowledge: Knowledge) -> List[dict]:
    """One button per outcome (at most three are shown in a row by the widget; all are sent)."""
    return [
        {"title": outcome.name, "payload": f'/ask_outcome_detail{{"outcome": "{outcome.id}"}}'}
        for outcome in knowledge.outcomes
    ]
