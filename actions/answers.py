"""Answers about the Plan, the Trust and the figures, straight from the knowledge file.

The topic itself, a detail of it ("how often?"), where it comes from, and "tell me more".
"""

from __future__ import annotations

from typing import List, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.base import (
    EventType,
    KnowledgeAction,
    Question,
    clear_pending,
    next_steps,
    question_of,
    say_lines,
    say_not_known,
    topic_button,
)
from actions.constants import (
    ACTION_ANSWER_DETAIL,
    ACTION_ANSWER_TOPIC,
    ACTION_OUTCOME_DETAIL,
    ACTION_SOURCE,
    ACTION_TELL_MORE,
    DETAIL_INTENTS,
    ENTITY_TOPIC,
    INTENT_CAPABILITIES,
    SLOT_CURRENCY_TOLD,
    SLOT_LAST_TOPIC,
    TOPIC_DETAIL_PREFIX,
    TOPIC_INTENT_PREFIX,
    TOPIC_OUTCOME_PREFIX,
    TOPIC_SERVICES,
    UTTER_NO_SOURCE,
)
from actions.knowledge import Knowledge, Topic
from actions.outcomes import one_outcome_named
from actions.services import current_directory, source_line

# Topics whose first answer is preceded by the note that the Plan is from 2014-17.
CURRENCY_GROUPS = {"plan"}
TOPICS_THAT_ARE_THE_CURRENCY_NOTE = {"up_to_date"}
PLAN_YEARS = "2014"
OUTCOMES_TOPIC = "outcomes"


def chosen_topic(knowledge: Knowledge, question: Question) -> str:
    """The topic a question asks about: ``ask_<id>``, or the narrower part of it the message names."""
    topic_id = question.intent[len(TOPIC_INTENT_PREFIX) :] if question.intent.startswith(TOPIC_INTENT_PREFIX) else ""
    topic = knowledge.topic(topic_id)
    if topic is None or not topic.narrower:
        return topic_id
    named = question.entity(ENTITY_TOPIC)
    if named in topic.narrower:
        return str(named)
    mentioned = knowledge.topic_in_text(question.text, among=topic.narrower)
    return mentioned or topic_id


def tidy_text(tracker: Tracker, question: Question) -> str:
    """The question's words with text-speak and spelling tidied (the NLU normaliser's), for cue words."""
    if question.pending:
        return question.text
    return str(tracker.latest_message.get("normalised_text") or question.text)


def follow_up_of(knowledge: Knowledge, text: str, asked: str, previous: str) -> Optional[str]:
    """The detail kind when a question about ``asked`` is really a follow-up about ``previous``.

    It is, when it has a detail's cue words ("how many", "when", "why") and either asks about the
    same topic again (or a part of it), or points back ("how many of them"), or is only a few words
    ("Timeframe?"), and does not itself clearly name the topic it was classified as. A broader topic
    ("how much money is there in total?" after one figure) is a new question.
    """
    kind = knowledge.detail_in_text(text) if text else None
    if kind is None or not previous or knowledge.topic(previous) is None:
        return None
    topic = knowledge.topic(previous)
    if asked == previous or (topic is not None and asked in topic.narrower):
        return kind
    if knowledge.topic_in_text(text, strong_only=True) == asked:
        return None
    if knowledge.refers_back(text) or len(text.split()) <= 3:
        return kind
    return None


def last_topic(tracker: Tracker) -> str:
    """The knowledge topic of the last answer (a detail's topic counts too), or ''."""
    last = str(tracker.get_slot(SLOT_LAST_TOPIC) or "")
    if last.startswith(TOPIC_DETAIL_PREFIX):
        return last[len(TOPIC_DETAIL_PREFIX) :].split(":", 1)[0]
    if last.startswith(TOPIC_OUTCOME_PREFIX):
        return "outcomes"  # a detail of one outcome is a detail of the outcomes
    return last


class ActionAnswerTopic(KnowledgeAction):
    """Answers the topic named by the intent: ``ask_<topic>`` gives topic ``<topic>``.

    Adding a topic to the knowledge file and an ``ask_<topic>`` intent with a rule
    is all it takes to add a question: no Python.
    """

    def name(self) -> str:
        """Returns the action's name in the domain."""
        return ACTION_ANSWER_TOPIC

    async def answer(self, dispatcher: CollectingDispatcher, tracker: Tracker, knowledge: Knowledge) -> List[EventType]:
        """Sends the topic's answer (at most three messages) with next steps, and remembers it."""
        question = question_of(tracker)
        topic_id = chosen_topic(knowledge, question)
        topic = knowledge.topic(topic_id)
        if topic is None:
            say_not_known(dispatcher)
            return []
        events: List[EventType] = clear_pending() if question.pending else []
        if topic_id == OUTCOMES_TOPIC and one_outcome_named(question, knowledge):
            return [*events, FollowupAction(ACTION_OUTCOME_DETAIL)]  # "what's the fourth outcome?"
        previous = last_topic(tracker)
        text = tidy_text(tracker, question)
        if previous and previous != topic_id and knowledge.asks_for_source(text):
            return [*events, FollowupAction(ACTION_SOURCE)]  # "source of the figures?" after the money
        if previous == topic_id and knowledge.asks_for_more(text):
            return [*events, FollowupAction(ACTION_TELL_MORE)]  # "scope of the changes?" after that answer
        kind = follow_up_of(knowledge, text, topic_id, previous)
        if kind is not None:
            # "How many children took part?" after how the Plan was made: a detail, not the topic again.
            return events + answer_detail(dispatcher, knowledge, previous, kind)
        currency_told = bool(tracker.get_slot(SLOT_CURRENCY_TOLD))
        if topic_id in TOPICS_THAT_ARE_THE_CURRENCY_NOTE:
            events.append(SlotSet(SLOT_CURRENCY_TOLD, True))
        elif topic.group in CURRENCY_GROUPS and not currency_told:
            gives_years = any(PLAN_YEARS in line for line in topic.answer)
            note = knowledge.currency.short if gives_years else knowledge.answer_lines(knowledge.currency)[0]
            dispatcher.utter_message(text=note)
            events.append(SlotSet(SLOT_CURRENCY_TOLD, True))
        say_lines(dispatcher, knowledge.answer_lines(topic), next_steps(knowledge, topic))
        events.append(SlotSet(SLOT_LAST_TOPIC, topic_id))
        return events


def detail_buttons(knowledge: Knowledge, topic: Topic, skip: Optional[str] = None, most: int = 2) -> List[dict]:
    """Buttons for other details the knowledge file has about a topic."""
    kinds = [kind for kind in topic.details if kind != skip][:most]
    return [{"title": knowledge.detail_kinds[kind].button, "payload": f"/ask_{kind}"} for kind in kinds]


def detail_topic(knowledge: Knowledge, text: str, last: str) -> str:
    """The topic a follow-up is about: the last one, unless the message clearly names another."""
    if not last:  # nothing answered yet: any keyword will do ("who pays for all of it?")
        return (knowledge.topic_in_text(text) if text else None) or ""
    named = knowledge.topic_in_text(text, strong_only=True) if text else None
    if named is None or named in knowledge.related_topics(last):
        broader = knowledge.topic_in_text(text) if text else None
        parent = knowledge.topic(broader) if broader else None
        # "how much money is there in total?" after one figure: the money as a whole.
        return str(broader) if parent is not None and last in parent.narrower else last
    return named


def answer_detail(dispatcher: CollectingDispatcher, knowledge: Knowledge, topic_id: str, kind: str) -> List[EventType]:
    """Sends one detail of a topic from the knowledge file, or says honestly it is not there."""
    topic = knowledge.topic(topic_id)
    if topic is None or kind not in knowledge.detail_kinds:
        dispatcher.utter_message(response="utter_which_topic", buttons=start_buttons(knowledge))
        return []
    source_button = {"title": knowledge.next_steps.source, "payload": "/ask_source"}
    parts = [knowledge.topic(p) for p in topic.narrower]
    pieces = [p.details[kind] for p in parts if p is not None and kind in p.details]
    found = topic.details.get(kind)
    if found is None and pieces:
        # "what is it for?" after the money in general: each part that says, in turn.
        lines = [line for piece in pieces for line in knowledge.answer_lines(piece)][:3]
        say_lines(dispatcher, lines, [*detail_buttons(knowledge, topic, skip=kind), source_button][:3])
        return [SlotSet(SLOT_LAST_TOPIC, f"{TOPIC_DETAIL_PREFIX}{topic_id}:{kind}")]
    if found is None:
        what = knowledge.detail_kinds[kind].what
        lines = [line.format(what=what, title=topic.title) for line in knowledge.no_detail]
        quote = topic.all_sources()[0].quote
        buttons = detail_buttons(knowledge, topic, skip=kind) + [
            {"title": knowledge.next_steps.something_else, "payload": f"/{INTENT_CAPABILITIES}"}
        ]
        say_lines(dispatcher, [*lines, f"\u201c{quote}\u201d"], buttons[:3])
        return [SlotSet(SLOT_LAST_TOPIC, topic_id)]
    say_lines(
        dispatcher, knowledge.answer_lines(found), [*detail_buttons(knowledge, topic, skip=kind), source_button][:3]
    )
    return [SlotSet(SLOT_LAST_TOPIC, f"{TOPIC_DETAIL_PREFIX}{topic_id}:{kind}")]


class ActionAnswerDetail(KnowledgeAction):
    """Answers a follow-up about a detail of the last answer: how often, who for, who gives, ..."""

    def name(self) -> str:
        """Returns the action's name in the domain."""
        return ACTION_ANSWER_DETAIL

    async def answer(self, dispatcher: CollectingDispatcher, tracker: Tracker, knowledge: Knowledge) -> List[EventType]:
        """Sends the detail from the knowledge file, or says honestly it is not there and quotes the source."""
        question = question_of(tracker)
        kind = DETAIL_INTENTS.get(question.intent, "")
        # Several cue words outweigh the classifier's pick of a near kind ("who is it for?" is not "who gives").
        kind = knowledge.detail_in_text(tidy_text(tracker, question), min_words=2) or kind
        events = clear_pending() if question.pending else []
        topic_id = detail_topic(knowledge, question.text, last_topic(tracker))
        return events + answer_detail(dispatcher, knowledge, topic_id, kind)


def start_buttons(knowledge: Knowledge) -> List[dict]:
    """The main topics, to start from."""
    ids = ["plan", "outcomes", "trust", "funding", "local_help"]
    return [b for b in (topic_button(knowledge, i) for i in ids) if b]


class ActionSource(KnowledgeAction):
    """Answers "where does that come from?": the page and the sentence of every fact of the last answer."""

    def name(self) -> str:
        """Returns the action's name in the domain."""
        return ACTION_SOURCE

    async def answer(self, dispatcher: CollectingDispatcher, tracker: Tracker, knowledge: Knowledge) -> List[EventType]:
        """Names each page once and quotes each sentence the last answer rests on."""
        last = str(tracker.get_slot(SLOT_LAST_TOPIC) or "")
        kind = knowledge.detail_in_text(tidy_text(tracker, question_of(tracker)), min_words=2)
        if kind is not None and knowledge.topic(last_topic(tracker)) is not None:  # "who wrote it?"
            return answer_detail(dispatcher, knowledge, last_topic(tracker), kind)
        directory = current_directory() if last == TOPIC_SERVICES else None
        if directory is not None:  # services from the imported directory: its address and the day it was copied
            dispatcher.utter_message(text=source_line(directory, knowledge), buttons=start_buttons(knowledge)[:3])
            return []
        sources = knowledge.sources_of(last)
        if not sources:
            dispatcher.utter_message(response=UTTER_NO_SOURCE, buttons=start_buttons(knowledge))
            return []
        lines: List[str] = []
        named = None
        for source in sources:
            title, quote = knowledge.source_text(source)
            if title != named:
                lines.append(f"That comes from {title}.")
                named = title
            lines.append(f"It says: \u201c{quote}\u201d")
        topic = knowledge.topic(last_topic(tracker))
        say_lines(dispatcher, lines, next_steps(knowledge, topic, source=False))
        return []


class ActionTellMore(KnowledgeAction):
    """Answers "tell me more" about the last topic: the lines kept back, or the details there are."""

    def name(self) -> str:
        """Returns the action's name in the domain."""
        return ACTION_TELL_MORE

    async def answer(self, dispatcher: CollectingDispatcher, tracker: Tracker, knowledge: Knowledge) -> List[EventType]:
        """Sends the topic's `more` lines, else offers its details, else says that is all."""
        topic = knowledge.topic(last_topic(tracker))
        if topic is None:
            dispatcher.utter_message(response="utter_which_topic", buttons=start_buttons(knowledge))
            return []
        if topic.more:
            say_lines(dispatcher, list(topic.more), next_steps(knowledge, topic.copy(update={"more": []})))
            return []
        buttons = detail_buttons(knowledge, topic, most=3)
        if buttons:
            dispatcher.utter_message(response="utter_more_details", buttons=buttons)
            return []
        dispatcher.utter_message(response="utter_that_is_all", buttons=next_steps(knowledge, topic, source=False))
        return []
