"""The bounded SQL tracker store: every event stored, a short window retrieved, the same state as the full one.

The conversations are built from the events Rasa 3.6 writes for this assistant (checked against a
real tracker database from `make bench`): topic answers that set slots, the two-stage fallback
that ends with `UserUtteranceReverted`, and the feedback form (an active loop).
"""

from __future__ import annotations

import copy
import json
import sqlite3
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import pytest
import sqlalchemy as sa
from rasa.core.actions.action import ActionSessionStart
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.domain import Domain, SessionConfig
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    DefinePrevUserUtteredFeaturization,
    Event,
    SlotSet,
    UserUttered,
    UserUtteranceReverted,
)
from rasa.shared.core.trackers import DialogueStateTracker, get_trackers_for_conversation_sessions
from rasa.utils.endpoints import read_endpoint_config
from sqlalchemy.pool import QueuePool

from bot.storage.tracker_store import CHECKPOINT_TABLE, BoundedSQLTrackerStore
from tests.conftest import ROOT

MAX_EVENTS = 60
LISTEN = "action_listen"
SENDER = "long-talker"


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(ROOT / "domain.yml"))


class Clock:
    """Increasing timestamps in the past, so that events created later by Rasa come after them."""

    def __init__(self) -> None:
        self.now = time.time() - 10_000

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def said(clock: Clock, text: str, intent: str, entities: Sequence[Tuple[str, str]] = ()) -> List[Event]:
    found = [{"entity": name, "value": value, "start": 0, "end": len(value)} for name, value in entities]
    return [
        UserUttered(text, {"name": intent, "confidence": 0.9}, found, timestamp=clock()),
        DefinePrevUserUtteredFeaturization(False, timestamp=clock()),
    ]


def act(clock: Clock, name: str) -> ActionExecuted:
    return ActionExecuted(name, timestamp=clock())


def bot(clock: Clock, text: str) -> BotUttered:
    return BotUttered(text, timestamp=clock())


def slot(clock: Clock, name: str, value: object) -> SlotSet:
    return SlotSet(name, value, timestamp=clock())


def loop(clock: Clock, name: Optional[str]) -> ActiveLoop:
    return ActiveLoop(name, timestamp=clock())


# One cycle of ten turns. Turn 5 sets `location` from an entity, then turn 6 ends the two-stage
# fallback with a revert that undoes it: the full tracker keeps "preston" from turn 3, while the
# latest SlotSet of `location` in the table says "chorley".
TURNS: List[Callable[[Clock], List[Event]]] = [
    lambda c: [*said(c, "hi", "greet"), act(c, "utter_greet"), bot(c, "Hi!"), act(c, LISTEN)],
    lambda c: [
        *said(c, "what is the plan", "ask_plan"),
        act(c, "action_answer_topic"),
        bot(c, "The Plan covers 2014 to 2017."),
        slot(c, "currency_told", True),
        slot(c, "last_topic", "plan"),
        act(c, LISTEN),
    ],
    lambda c: [
        *said(c, "help for families in preston", "ask_local_help", [("location", "preston")]),
        slot(c, "location", "preston"),
        act(c, "action_local_help"),
        bot(c, "Early help in Preston."),
        slot(c, "last_topic", "area:preston"),
        act(c, LISTEN),
    ],
    lambda c: [
        *said(c, "tell me more about the third one", "ask_outcome_detail", [("outcome", "be_happy")]),
        slot(c, "outcome", "be_happy"),
        act(c, "action_outcome_detail"),
        bot(c, "To be happy is outcome 3."),
        slot(c, "last_topic", "outcome:be_happy"),
        act(c, LISTEN),
    ],
    lambda c: [
        *said(c, "zzz chorley qq", "nlu_fallback", [("location", "chorley")]),
        slot(c, "location", "chorley"),
        act(c, "action_two_stage_fallback"),
        loop(c, "action_two_stage_fallback"),
        bot(c, "Did you want to know about the Plan?"),
        act(c, LISTEN),
    ],
    lambda c: [
        *said(c, "bye", "goodbye"),
        act(c, "action_two_stage_fallback"),
        loop(c, None),
        UserUtteranceReverted(timestamp=c()),
        act(c, LISTEN),
        *said(c, "bye", "goodbye"),
        act(c, "utter_goodbye"),
        bot(c, "Bye! Come back any time."),
        act(c, LISTEN),
    ],
    lambda c: [
        *said(c, "i want to give feedback", "give_feedback"),
        act(c, "utter_feedback_privacy"),
        bot(c, "Please don't put your name in your message."),
        act(c, "feedback_form"),
        loop(c, "feedback_form"),
        slot(c, "requested_slot", "feedback_about"),
        bot(c, "What would you like to give your view on?"),
        act(c, LISTEN),
    ],
    lambda c: [
        *said(c, "the plan", "ask_plan"),
        slot(c, "feedback_about", "the plan"),
        act(c, "feedback_form"),
        slot(c, "feedback_about", "plan"),
        slot(c, "requested_slot", "feedback_view"),
        bot(c, "What do you think?"),
        act(c, LISTEN),
    ],
    lambda c: [
        *said(c, "it is clear", "out_of_scope"),
        slot(c, "feedback_view", "it is clear"),
        act(c, "feedback_form"),
        loop(c, None),
        slot(c, "requested_slot", None),
        act(c, "action_save_feedback"),
        bot(c, "Thank you! Your view has been saved."),
        slot(c, "feedback_about", None),
        slot(c, "feedback_view", None),
        slot(c, "feedback_cancelled", None),
        act(c, LISTEN),
    ],
    lambda c: [
        *said(c, "who pays for that?", "ask_who_pays"),
        act(c, "action_who_pays"),
        bot(c, "The district councils pay."),
        act(c, LISTEN),
    ],
]


def session_start(clock: Clock) -> List[Event]:
    from rasa.shared.core.events import SessionStarted

    return [act(clock, "action_session_start"), SessionStarted(timestamp=clock()), act(clock, LISTEN)]


async def play_turn(
    store: TrackerStore, reference: DialogueStateTracker, events: List[Event], sender: str = SENDER
) -> DialogueStateTracker:
    """What Rasa's processor does with one message: retrieve, add the turn's events, save."""
    tracker = await store.get_or_create_tracker(sender, append_action_listen=False)
    for event in events:
        tracker.update(event)
        reference.update(copy.deepcopy(event))
    await store.save(tracker)
    return tracker


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def stored_rows(path: Path, sender: str = SENDER) -> List[dict]:
    """The stored events as Rasa reads them back (the store keeps a user text once, not twice)."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT data FROM events WHERE sender_id = ? ORDER BY id", (sender,)).fetchall()
    return [Event.from_parameters(json.loads(data)).as_dict() for (data,) in rows]


def as_dicts(events: Sequence[Event]) -> List[dict]:
    return [event.as_dict() for event in events]


def split_prefix(tracker: DialogueStateTracker) -> Tuple[List[Event], List[Event]]:
    """The rebuilt slot events in front of the window, and the window itself."""
    events = list(tracker.events)
    first_action = next(i for i, event in enumerate(events) if isinstance(event, ActionExecuted))
    return events[:first_action], events[first_action:]


def assert_same_state(
    window: DialogueStateTracker, full: DialogueStateTracker, domain: Domain, turn: int, states: int = 6
) -> None:
    where = f"at turn {turn}"
    assert window.current_slot_values() == full.current_slot_values(), where
    assert window.active_loop_name == full.active_loop_name, where
    assert window.latest_action_name == full.latest_action_name, where
    assert window.latest_message is not None and full.latest_message is not None
    assert window.latest_message.text == full.latest_message.text, where
    assert window.latest_message.intent == full.latest_message.intent, where
    assert window.is_paused() == full.is_paused(), where
    # What the policies look at: the latest states of the dialogue (RulePolicy's rules and the
    # MemoizationPolicy's max_history 3 reach back a few states).
    assert window.past_states(domain)[-states:] == full.past_states(domain)[-states:], where
    # What session expiry looks at.
    last_user = window.get_last_event_for(UserUttered)
    assert last_user is not None and last_user == full.get_last_event_for(UserUttered), where


async def test_a_300_turn_conversation_keeps_every_event_but_loads_a_window(tmp_path: Path, domain: Domain) -> None:
    db = tmp_path / "tracker.db"
    store = BoundedSQLTrackerStore(domain=domain, host=sqlite_url(db), max_events=MAX_EVENTS)
    rasa_store = SQLTrackerStore(domain=domain, host=sqlite_url(db))  # Rasa's own, to compare with
    clock = Clock()
    reference = DialogueStateTracker(SENDER, domain.slots)
    checked = set(range(1, 13)) | set(range(50, 301, 50)) | set(range(289, 301))

    for turn in range(1, 301):
        events = (session_start(clock) if turn == 1 else []) + TURNS[(turn - 1) % len(TURNS)](clock)
        await play_turn(store, reference, events)
        if turn not in checked:
            continue
        window = await store.retrieve(SENDER)
        full = await rasa_store.retrieve(SENDER)
        assert window is not None and full is not None
        assert_same_state(window, full, domain, turn)
        if len(full.events) <= MAX_EVENTS:  # a short session is loaded whole
            assert as_dicts(list(window.events)) == as_dicts(list(full.events))
            continue
        prefix, recent = split_prefix(window)
        assert len(recent) <= MAX_EVENTS, f"window of {len(recent)} events at turn {turn}"
        assert all(isinstance(event, SlotSet) for event in prefix)
        assert isinstance(recent[0], ActionExecuted) and recent[0].action_name == LISTEN
        assert as_dicts(recent) == as_dicts(list(full.events)[-len(recent) :])

    # Every event is in the table, once, in order: the same as the tracker that saw them all.
    assert stored_rows(db) == as_dicts(list(reference.events))
    assert len(reference.events) > 2000
    window = await store.retrieve(SENDER)
    assert window is not None
    prefix, recent = split_prefix(window)
    assert prefix, "the slots set before the window must be rebuilt in front of it"
    # The revert of turn 296 undid location=chorley; the value is the one from turn 293.
    assert window.get_slot("location") == "preston"
    assert window.get_slot("currency_told") is True
    full_tracker = await store.retrieve_full_tracker(SENDER)
    assert full_tracker is not None
    assert as_dicts(list(full_tracker.events)) == as_dicts(list(reference.events))


async def test_mid_loop_states_match_the_full_tracker(tmp_path: Path, domain: Domain) -> None:
    """A window never starts inside a loop, so a form's history reads the same.

    With room for only 20 events, three whole turns often do not fit: the window then grows back to
    the nearest start that holds three user messages.
    """
    db = tmp_path / "tracker.db"
    store = BoundedSQLTrackerStore(domain=domain, host=sqlite_url(db), max_events=20)
    rasa_store = SQLTrackerStore(domain=domain, host=sqlite_url(db))
    clock = Clock()
    reference = DialogueStateTracker(SENDER, domain.slots)
    loops_seen = set()
    for turn in range(1, 41):
        events = (session_start(clock) if turn == 1 else []) + TURNS[(turn - 1) % len(TURNS)](clock)
        await play_turn(store, reference, events)
        window = await store.retrieve(SENDER)
        full = await rasa_store.retrieve(SENDER)
        assert window is not None and full is not None
        assert_same_state(window, full, domain, turn)
        assert len(window.events) < len(full.events) or turn < 4
        loops_seen.add(full.active_loop_name)
    assert loops_seen == {None, "feedback_form", "action_two_stage_fallback"}


async def test_a_revert_reaching_back_past_a_window_start_is_never_cut(tmp_path: Path, domain: Domain) -> None:
    """`action_back` undoes two user messages: a window must not start between them.

    Starting at the `action_listen` before "/back" would fit in 13 events and hold a user message,
    but would keep the slots of the turn that "/back" undid.
    """
    db = tmp_path / "tracker.db"
    store = BoundedSQLTrackerStore(domain=domain, host=sqlite_url(db), max_events=13, min_turns=1)
    rasa_store = SQLTrackerStore(domain=domain, host=sqlite_url(db))
    clock = Clock()
    reference = DialogueStateTracker(SENDER, domain.slots)

    def back(c: Clock) -> List[Event]:
        reverts = [UserUtteranceReverted(timestamp=c()), UserUtteranceReverted(timestamp=c())]
        return [*said(c, "/back", "back"), act(c, "action_back"), bot(c, "Going back."), *reverts, act(c, LISTEN)]

    for events in (session_start(clock) + TURNS[0](clock), TURNS[1](clock), TURNS[3](clock), back(clock)):
        await play_turn(store, reference, events)
    await play_turn(store, reference, TURNS[0](clock))

    window = await store.retrieve(SENDER)
    full = await rasa_store.retrieve(SENDER)
    assert window is not None and full is not None
    assert len(window.events) < len(full.events)
    assert_same_state(window, full, domain, 5, states=2)
    assert (window.get_slot("last_topic"), window.get_slot("outcome")) == ("plan", None)


async def test_two_replicas_taking_turns_lose_and_repeat_nothing(tmp_path: Path, domain: Domain) -> None:
    db = tmp_path / "tracker.db"
    replicas = [BoundedSQLTrackerStore(domain=domain, host=sqlite_url(db), max_events=30) for _ in range(2)]
    rasa_store = SQLTrackerStore(domain=domain, host=sqlite_url(db))
    clock = Clock()
    reference = DialogueStateTracker(SENDER, domain.slots)
    for turn in range(1, 81):
        events = (session_start(clock) if turn == 1 else []) + TURNS[(turn - 1) % len(TURNS)](clock)
        await play_turn(replicas[turn % 2], reference, events)
    assert stored_rows(db) == as_dicts(list(reference.events))
    full = await rasa_store.retrieve(SENDER)
    assert full is not None
    for replica in replicas:
        window = await replica.retrieve(SENDER)
        assert window is not None
        assert_same_state(window, full, domain, 80)


async def test_conversations_handled_at_once_are_saved_apart(tmp_path: Path, domain: Domain) -> None:
    db = tmp_path / "tracker.db"
    store = BoundedSQLTrackerStore(domain=domain, host=sqlite_url(db), max_events=25)
    clock = Clock()
    senders = ["first", "second"]
    references: Dict[str, DialogueStateTracker] = {s: DialogueStateTracker(s, domain.slots) for s in senders}
    for turn in range(1, 41):
        # Both trackers are loaded before either is saved, and saved in the other order.
        trackers = {s: await store.get_or_create_tracker(s, append_action_listen=False) for s in senders}
        for index, sender in enumerate(senders):
            events = (session_start(clock) if turn == 1 else []) + TURNS[(turn - 1 + index * 3) % len(TURNS)](clock)
            for event in events:
                trackers[sender].update(event)
                references[sender].update(copy.deepcopy(event))
        for sender in reversed(senders):
            await store.save(trackers[sender])
            await store.save(trackers[sender])  # saving again stores nothing twice
    for sender in senders:
        assert stored_rows(db, sender) == as_dicts(list(references[sender].events))


async def test_a_new_session_starts_from_the_window_and_the_full_tracker_keeps_both(
    tmp_path: Path, domain: Domain
) -> None:
    carry_over = copy.deepcopy(domain)
    carry_over.session_config = SessionConfig(session_expiration_time=60, carry_over_slots=True)
    db = tmp_path / "tracker.db"
    store = BoundedSQLTrackerStore(domain=carry_over, host=sqlite_url(db), max_events=MAX_EVENTS)
    rasa_store = SQLTrackerStore(domain=carry_over, host=sqlite_url(db))
    clock = Clock()
    reference = DialogueStateTracker(SENDER, carry_over.slots)
    for turn in range(1, 101):
        events = (session_start(clock) if turn == 1 else []) + TURNS[(turn - 1) % len(TURNS)](clock)
        await play_turn(store, reference, events)
    before = reference.current_slot_values()

    # What Rasa's processor does when the session has expired: run action_session_start.
    tracker = await store.retrieve(SENDER)
    assert tracker is not None
    tracker.update(ActionExecuted("action_session_start"))
    tracker.update_with_events(await ActionSessionStart().run(None, None, tracker, carry_over), carry_over)
    for event in TURNS[0](clock):
        event.timestamp = time.time()
        tracker.update(event)
    await store.save(tracker)

    window = await store.retrieve(SENDER)
    full = await rasa_store.retrieve(SENDER)
    assert window is not None and full is not None
    assert as_dicts(list(window.events)) == as_dicts(list(full.events))  # a short session is loaded whole
    assert window.events[0].type_name == "session_started"
    assert window.current_slot_values() == before  # carried over from the slots before the window
    everything = await store.retrieve_full_tracker(SENDER)
    assert everything is not None
    sessions = get_trackers_for_conversation_sessions(everything)
    assert len(sessions) == 2
    assert len(everything.events) == len(stored_rows(db)) > len(reference.events)


async def test_made_from_an_endpoints_file(tmp_path: Path, domain: Domain, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "tracker.db"
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(
        "tracker_store:\n"
        "  type: bot.storage.tracker_store.BoundedSQLTrackerStore\n"
        "  url: ${TRACKER_DB_URL}\n"
        "  max_events: ${TRACKER_MAX_EVENTS}\n"
        "  min_turns: 2\n"
    )
    monkeypatch.setenv("TRACKER_DB_URL", sqlite_url(db))
    monkeypatch.setenv("TRACKER_MAX_EVENTS", "45")
    store = TrackerStore.create(read_endpoint_config(str(endpoints), "tracker_store"), domain)
    assert isinstance(store, BoundedSQLTrackerStore)
    assert (store.max_events, store.min_turns) == (45, 2)
    assert str(store.engine.url) == sqlite_url(db)
    with sqlite3.connect(db) as connection:
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"events", CHECKPOINT_TABLE} <= tables


@pytest.mark.parametrize("bad", [0, -5, "lots", 2.5, True])
def test_a_bad_window_size_is_refused(tmp_path: Path, domain: Domain, bad: object) -> None:
    # Refused loudly: Rasa would quietly fall back to an in-memory store on an AttributeError.
    with pytest.raises(ValueError, match="max_events"):
        BoundedSQLTrackerStore(domain=domain, host=sqlite_url(tmp_path / "t.db"), max_events=bad)


async def test_sqlite_connections_are_kept_and_in_wal_mode(tmp_path: Path, domain: Domain) -> None:
    db = tmp_path / "tracker.db"
    store = BoundedSQLTrackerStore(domain=domain, host=sqlite_url(db))
    clock = Clock()
    await store.save(DialogueStateTracker.from_events(SENDER, [act(clock, LISTEN), *TURNS[0](clock)], domain.slots))
    opened: List[int] = []
    sa.event.listen(store.engine, "connect", lambda *_: opened.append(1))
    for turn in TURNS[1:4]:
        tracker = await store.retrieve(SENDER)
        assert tracker is not None
        tracker.update_with_events(turn(clock), domain)
        await store.save(tracker)
    assert opened == [], "a new SQLite connection was opened for a message"
    assert len(stored_rows(db)) == 1 + sum(len(turn(Clock())) for turn in TURNS[:4])
    with sqlite3.connect(db) as connection:
        (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
    assert mode == "wal"
    with store.session_scope() as session:
        (sync,) = session.execute(sa.text("PRAGMA synchronous")).fetchone()
    assert sync == 1  # NORMAL


def test_an_in_memory_sqlite_store_is_left_as_rasa_makes_it(domain: Domain) -> None:
    store = BoundedSQLTrackerStore(domain=domain, host="sqlite://")
    assert not isinstance(store.engine.pool, QueuePool)
