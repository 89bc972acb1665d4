"""Answers about the Plan, the Trust and the figures, straight from the knowledge file.

The topic itself, a detail of it ("how often?"), where it comes from, and "tell me more".
"""

from __future__ import annotations

from typing import List, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
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
    ACTION_SOURCE,
    ACTION_TELL_MORE,
    DETAIL_INTENTS,
    ENTITY_TOPIC,
    INTENT_CAPABILITIES,
    SLOT_CURRENCY_TOLD,
    SLOT_LAST_TOPIC,
    TOPIC_DETAIL_PREFIX,
    TOPIC_INTENT_PREFIX,
    TOPIC_SERVICES,
    UTTER_NO_SOURCE,
)
from actions.knowledge import Knowledge, Topic
from actions.services import current_directory, source_line

# Topics whose first answer is preceded by the note that the Plan is from 2014-17.
CURRENCY_GROUPS = {"plan"}
TOPICS_THAT_ARE_THE_CURRENCY_NOTE = {"up_to_date"}
PLAN_YEARS = "2014"


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


def last_topic(tracker: Tracker) -> str:
    """The knowledge topic of the last answer (a detail's topic counts too), or ''."""
    last = str(tracker.get_slot(SLOT_LAST_TOPIC) or "")
    if last.startswith(TOPIC_DETAIL_PREFIX):
        return last[len(TOPIC_DETAIL_PREFIX) :].split(":", 1)[0]
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


class ActionAnswerDetail(KnowledgeAction):
    """Answers a follow-up about a detail of the last answer: how often, who for, who gives, ..."""

    def name(self) -> str:
        """Returns the action's name in the domain."""
        return ACTION_ANSWER_DETAIL

    async def answer(self, dispatcher: CollectingDispatcher, tracker: Tracker, knowledge: Knowledge) -> List[EventType]:
        """Sends the detail from the knowledge file, or says honestly it is not there and quotes the source."""
        question = question_of(tracker)
        kind = DETAIL_INTENTS.get(question.intent, "")
        named = knowledge.topic_in_text(question.text) if question.text else None
        topic_id = named or last_topic(tracker)
        topic = knowledge.topic(topic_id)
        if topic is None or not kind:
            dispatcher.utter_message(response="utter_which_topic", buttons=start_buttons(knowledge))
            return []
        parts = [knowledge.topic(p) for p in topic.narrower]
        pieces = [p.details[kind] for p in parts if p is not None and kind in p.details]
        if kind not in topic.details and pieces:
            # "what is it for?" after the money in general: each part that says, in turn.
            lines = [line for piece in pieces for line in knowledge.answer_lines(piece)][:3]
            buttons = [{"title": knowledge.next_steps.source, "payload": "/ask_source"}]
            say_lines(dispatcher, lines, [*detail_buttons(knowledge, topic, skip=kind), *buttons][:3])
            return [SlotSet(SLOT_LAST_TOPIC, f"{TOPIC_DETAIL_PREFIX}{topic_id}:{kind}")]
        found = topic.details.get(kind)
        if found is None:
            what = knowledge.detail_kinds[kind].what
            lines = [line.format(what=what, title=topic.title) for line in knowledge.no_detail]
            quote = topic.all_sources()[0].quote
            buttons = detail_buttons(knowledge, topic, skip=kind) + [
                {"title": knowledge.next_steps.something_else, "payload": f"/{INTENT_CAPABILITIES}"}
            ]
            say_lines(dispatcher, [*lines, f"\u201c{quote}\u201d"], buttons[:3])
            return [SlotSet(SLOT_LAST_TOPIC, topic_id)]
        buttons = detail_buttons(knowledge, topic, skip=kind) + [
            {"title": knowledge.next_steps.source, "payload": "/ask_source"}
        ]
        say_lines(dispatcher, knowledge.answer_lines(found), buttons[:3])
        return [SlotSet(SLOT_LAST_TOPIC, f"{TOPIC_DETAIL_PREFIX}{topic_id}:{kind}")]


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
