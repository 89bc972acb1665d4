"""A SQL tracker store that gives Rasa only the recent part of a long conversation.

Rasa's ``SQLTrackerStore`` loads every event of the current session on every message, and the
policies then work through all of them, so a reply at turn 300 takes about ten times as long as
at turn 1 (``make bench``). Our dialogue is rule-based: a reply depends on the latest turns, the
slots and the active loop, never on turn 12 as such. ``BoundedSQLTrackerStore``:

- **stores every event**, exactly as ``SQLTrackerStore`` does, in the same ``events`` table:
  ``retrieve_full_tracker`` and anyone reading the table still get the whole conversation;
- **retrieves a window**: at most ``max_events`` of the latest events of the session, starting at
  an ``action_listen`` that begins a user turn, so rules see whole turns. In front of the window
  it puts one ``SlotSet`` per slot that had been set, with its value at that point (and
  ``ConversationPaused`` if the conversation was paused), so the tracker has the same slots and
  active loop as the full one;
- **saves exactly the new events** of a tracker, however it was loaded (see ``save``).

Where the slot values in front of the window come from: a *checkpoint*. When ``save`` stores a
turn that ends on ``action_listen`` with no loop active, it also writes the tracker's slot values
into the table ``tracker_checkpoints``, keyed by the id of that ``action_listen`` row, in the same
transaction. A window may only start at an ``action_listen`` that has a checkpoint. Reading "the
latest ``SlotSet`` of each slot" back from the events would be wrong here: Rasa's two-stage
fallback ends with ``UserUtteranceReverted``, which undoes the ``SlotSet`` events of the turns it
reverts, and only a full replay can tell which ones those were. The checkpoint is the state that
replay gave when the turn was saved.

A window only starts where starting there gives the same history as the full tracker:

- no loop is active there (a form's later steps, its happy-path bookkeeping in Rasa's
  ``applied_events`` and its validate/rejected flags all look back to its earlier steps), so the
  active loop always comes from the window's own ``ActiveLoop`` events;
- no revert in the window (``UserUtteranceReverted``, ``ActionReverted``, a loop undoing its own
  turns) reaches back past its start;
- it holds at least ``min_turns`` user messages that its own reverts leave standing, so that
  rules, the memoization policy and the two-stage fallback (which looks at the last three user
  messages) see what they would see in the full tracker.

If no start within ``max_events`` qualifies (say, a form that has been running for many turns),
the window grows back to the nearest one that does, or to the whole session, as Rasa does. A
session that has no more than ``max_events`` events is loaded whole. Sessions behave as in Rasa:
a window never crosses the latest ``session_started`` event.

Differences from ``SQLTrackerStore`` that show:

- the session starts at the latest ``session_started`` row by id (Rasa: by timestamp; the same
  rows unless timestamps go backwards);
- with ``carry_over_slots_to_new_session: true``, a new session carries one ``SlotSet`` per slot
  instead of every ``SlotSet`` of the old session: the values are the same;
- HTTP API answers that return the tracker of the current session (``POST .../tracker/events``,
  ``.../story`` of the latest session) show the window; ``GET .../tracker`` shows everything;
- ``tracker_checkpoints`` holds copies of slot values: deleting a conversation means deleting its
  rows there too (``sender_id``).

Configured in ``endpoints.yml``::

    tracker_store:
      type: bot.storage.tracker_store.BoundedSQLTrackerStore
      url: ${TRACKER_DB_URL}
      max_events: 60
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Text, Tuple, Type

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore, validate_port
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ConversationPaused,
    Event,
    Restarted,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY
from rasa.shared.utils.common import all_subclasses
from sqlalchemy.engine import Connection
from sqlalchemy.orm import sessionmaker

from bot.privacy.erase import CHECKPOINTS_TABLE, FORGET_ACTION, delete_conversation_rows, truncate_wal
from bot.privacy.files import private_database
from bot.privacy.redact import redact
from bot.storage.engine import engine_for, with_retries
from bot.storage.migrate import ensure_schema

logger = logging.getLogger(__name__)

DEFAULT_MAX_EVENTS = 60
DEFAULT_MIN_TURNS = 3

# How many of a tracker's events are already in the database. Kept on the tracker object itself,
# so that it is right for every conversation a process handles at once, and for every replica.
STORED_EVENTS_ATTRIBUTE = "_bounded_sql_stored_events"

CHECKPOINT_TABLE = CHECKPOINTS_TABLE  # named once, in bot/privacy/erase.py (Rasa-free, it purges it)
_METADATA = sa.MetaData()
CHECKPOINTS = sa.Table(
    CHECKPOINT_TABLE,
    _METADATA,
    # The id of the `action_listen` row in `events` this state belongs to.
    sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("sender_id", sa.String(255), nullable=False),
    # JSON: {"slots": {name: value} for every slot that had been set, "paused": bool}
    sa.Column("state", sa.Text, nullable=False),
    sa.Index(f"ix_{CHECKPOINT_TABLE}_sender_event", "sender_id", "event_id"),
)

# The statements of every message, built once (SQLAlchemy then reuses their compiled form).
EVENTS = SQLTrackerStore.SQLEvent.__table__
_TAIL = (
    sa.select(EVENTS.c.id, EVENTS.c.type_name, EVENTS.c.timestamp, EVENTS.c.data)
    .where(EVENTS.c.sender_id == sa.bindparam("sender"))
    .order_by(EVENTS.c.id.desc())
    .limit(sa.bindparam("limit", type_=sa.Integer))
)
_CHECKPOINTS_BETWEEN = sa.select(CHECKPOINTS.c.event_id, CHECKPOINTS.c.state).where(
    CHECKPOINTS.c.sender_id == sa.bindparam("sender"),
    CHECKPOINTS.c.event_id >= sa.bindparam("first"),
    CHECKPOINTS.c.event_id <= sa.bindparam("last"),
)
_INSERT_EVENTS = EVENTS.insert()
_INSERT_CHECKPOINT = CHECKPOINTS.insert()

# Event classes by type name, filled on first use (see `_event_class`).
_EVENT_CLASSES: Dict[str, Type[Event]] = {}

# The probe's stand-ins for "everything before the window" (see `_applied_user_messages`).
_PROBE_SENDER = "bounded-window-probe"
_PROBE_ACTION = "bounded_window_start"


def stored_event_count(tracker: DialogueStateTracker) -> Optional[int]:
    """How many of the tracker's events are known to be stored, or None if this store never saw it.

    Args:
        tracker: a tracker, usually one this store retrieved or saved.

    Returns:
        The number of leading events of ``tracker.events`` that are in the database.
    """
    value = getattr(tracker, STORED_EVENTS_ATTRIBUTE, None)
    return value if isinstance(value, int) else None


def _mark_stored(tracker: DialogueStateTracker, count: int) -> None:
    setattr(tracker, STORED_EVENTS_ATTRIBUTE, count)


def _positive_int(name: str, value: Any) -> int:
    """Reads a whole number >= 1 from the endpoint config (a ``${VAR}`` there gives a string)."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}") from None
    if number < 1 or (isinstance(value, float) and number != value):
        raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}")
    return number


def _is_listen(event: Event) -> bool:
    return isinstance(event, ActionExecuted) and event.action_name == ACTION_LISTEN_NAME


def _event_class(type_name: str) -> Optional[Type[Event]]:
    """The event class for a stored type name, as Rasa's ``Event.resolve_by_type`` finds it.

    Rasa walks every subclass of ``Event`` for each event it reads (most of the time it takes to
    load a tracker); the answer is kept here, and looked for again when a name is not known yet.
    """
    found = _EVENT_CLASSES.get(type_name)
    if found is None:
        _EVENT_CLASSES.clear()
        for candidate in all_subclasses(Event):
            _EVENT_CLASSES.setdefault(candidate.type_name, candidate)  # the first one wins, as in Rasa
        found = _EVENT_CLASSES.get(type_name)
    return found


def _deserialise(data: Optional[str]) -> Optional[Event]:
    """One stored event, as Rasa's ``deserialise_events`` reads it (None if Rasa would skip it)."""
    if not data:
        return None
    parameters = json.loads(data)
    if not isinstance(parameters, dict) or "event" not in parameters:
        return None
    event_class = _event_class(parameters["event"])
    if event_class is None:  # Rasa's own answer for a name it does not know
        return Event.from_parameters(parameters)
    return event_class._from_parameters(parameters)


def _applied_user_messages(window: Sequence[Event]) -> Optional[int]:
    """How many user messages replaying ``window`` alone applies, or None if that is not safe.

    Rasa decides what a revert or a loop's happy path undoes in ``applied_events``. Here two
    stand-in events go in front of the window and Rasa's own ``applied_events`` runs over them:
    if any undo reaches past the window's start, it removes a stand-in, and the window is not
    self-contained. A restart inside the window makes everything before it irrelevant.

    Returns:
        The number of ``UserUttered`` events that survive the window's own reverts (the turns
        the policies see), or None if the window undoes events from before its start.
    """
    head: List[Event] = [ActionExecuted(_PROBE_ACTION), UserUttered(_PROBE_ACTION)]
    probe = DialogueStateTracker(_PROBE_SENDER, slots=None)
    probe.events.extend(head)
    probe.events.extend(window)
    applied = probe.applied_events()
    restarted = any(isinstance(event, (Restarted, SessionStarted)) for event in window)
    if not restarted and not (len(applied) >= 2 and applied[0] is head[0] and applied[1] is head[1]):
        return None
    return sum(isinstance(event, UserUttered) for event in applied if event is not head[1])


def _checkpoint_state(tracker: DialogueStateTracker, new_events: Sequence[Event]) -> Optional[str]:
    """The state to remember at the end of a save, if a window may start there (else None).

    A window may start at the ``action_listen`` that ends a saved turn when no loop is active.
    """
    if not new_events or not _is_listen(new_events[-1]) or tracker.active_loop_name is not None:
        return None
    slots = {name: _redacted_value(slot.value) for name, slot in tracker.slots.items() if slot.has_been_set}
    return json.dumps({"slots": slots, "paused": tracker.is_paused()})


# ---- privacy: what is stored of what people type (bot/privacy/redact.py) ---------------------------


def _redacted_value(value: Any) -> Any:
    """A slot value as stored: text with personal details removed, anything else as it is."""
    return redact(value) if isinstance(value, str) else value


def _redacted_strings(value: Any) -> Any:
    """Every string inside ``value`` (dicts and lists walked through) redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted_strings(item) for item in value]
    return value


def _redacted_event(data: Dict[str, Any]) -> Dict[str, Any]:
    """An event's dict as stored: user text redacted and kept once, slot values redacted.

    The text of a user message is kept in ``text`` only: Rasa's ``UserUttered`` puts it back into
    ``parse_data`` when the event is read (and its copy of the metadata). Every other string the
    pipeline added to ``parse_data`` (entity values, a normalised copy of the text, what the safety
    net or the second opinion noted) is redacted too.
    """
    kind = data.get("event")
    if kind == UserUttered.type_name:
        data["text"] = _redacted_value(data.get("text"))
        parse_data = dict(data.get("parse_data") or {})
        parse_data.pop("text", None)
        parse_data.pop("metadata", None)
        data["parse_data"] = _redacted_strings(parse_data)
    elif kind == SlotSet.type_name:
        data["value"] = _redacted_strings(data.get("value"))
    return data


@dataclass(frozen=True)
class _StoredEvent:
    """An event read back from the ``events`` table, with its row id."""

    row_id: int
    timestamp: Optional[float]
    event: Event


class BoundedSQLTrackerStore(SQLTrackerStore):
    """``SQLTrackerStore`` that stores every event but retrieves a bounded recent window."""

    engine: sa.engine.Engine

    def __init__(
        self,
        domain: Optional[Domain] = None,
        max_events: Any = DEFAULT_MAX_EVENTS,
        min_turns: Any = DEFAULT_MIN_TURNS,
        **kwargs: Any,
    ) -> None:
        """Connects to the database, whose tables ``make migrate`` made (``bot/storage/migrate.py``).

        Rasa creates a custom store from ``endpoints.yml`` with ``host=<url>``, ``domain``,
        ``event_broker`` and the other keys of the ``tracker_store`` section as keyword arguments.

        Args:
            domain: the assistant's domain (its slots are rebuilt in front of the window).
            max_events: the most events a retrieved window holds (slot values in front of it not
                counted), unless no safe start exists within it.
            min_turns: the fewest user messages a window holds.
            **kwargs: everything ``SQLTrackerStore`` takes: ``host`` (a URL), ``dialect``, ``db``,
                ``username``, ``password``, ``event_broker``, ``login_db``, ``query``.

        Raises:
            ValueError: if ``max_events`` or ``min_turns`` is not a whole number >= 1.
            SchemaNotCurrentError: the database was not migrated to this release's schema.
        """
        self.max_events = _positive_int("max_events", max_events)
        self.min_turns = _positive_int("min_turns", min_turns)
        if kwargs.pop("login_db", None):
            raise ValueError("login_db is not supported: make the database first, then run `make migrate`")
        url = self.get_db_url(
            kwargs.pop("dialect", "sqlite"),
            kwargs.pop("host", None),
            validate_port(kwargs.pop("port", None)),
            kwargs.pop("db", "rasa.db"),
            kwargs.pop("username", None),
            kwargs.pop("password", None),
            None,
            kwargs.pop("query", None),
        )
        # Not SQLTrackerStore.__init__: it creates tables (the migrations do, once) and retries
        # for ever; here the engine is the one this process shares with the lock store.
        self.engine = engine_for(url)
        ensure_schema(self.engine.url.render_as_string(hide_password=False), self.engine)
        private_database(self.engine.url)  # mode 600 (bot/privacy/files.py)
        self.sessionmaker = sessionmaker(bind=self.engine)
        TrackerStore.__init__(self, domain, kwargs.pop("event_broker", None), **kwargs)

    async def retrieve(self, sender_id: Text) -> Optional[DialogueStateTracker]:
        """Returns the latest session's recent window, with the slot values in front of it.

        Args:
            sender_id: the conversation's id.

        Returns:
            The tracker, or None if the conversation has no events.
        """

        def load() -> Optional[Tuple[List[Event], List[Event]]]:
            with self.engine.connect() as connection:
                return self._load_window(connection, sender_id)

        loaded = await with_retries(load, "loading a conversation")
        if loaded is None:
            return None
        prefix, window = loaded
        logger.debug(
            f"Recreating tracker for '{sender_id}' from {len(window)} recent events "
            f"and {len(prefix)} rebuilt slot events"
        )
        tracker = DialogueStateTracker.from_events(sender_id, prefix + window, self.domain.slots)
        _mark_stored(tracker, len(tracker.events))
        return tracker

    async def retrieve_full_tracker(self, conversation_id: Text) -> Optional[DialogueStateTracker]:
        """Returns every event of every session of the conversation, as ``SQLTrackerStore`` does.

        Args:
            conversation_id: the conversation's id.

        Returns:
            The full tracker, or None if the conversation has no events.
        """
        tracker = await super().retrieve_full_tracker(conversation_id)
        if tracker is not None:
            _mark_stored(tracker, len(tracker.events))
        return tracker

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Stores the events of ``tracker`` that are not stored yet, and no others.

        Rasa's ``SQLTrackerStore`` counts the session's events in the database and stores the
        tracker's events after that position: with a window that position is wrong. Instead, each
        tracker this store returns or saves carries how many of its events are stored, and only
        the events after those are inserted. This holds per tracker object, so it stays right with
        many conversations at once and with several replicas on one database (Rasa's lock store
        already makes a conversation's turns run one at a time). A tracker this store never saw
        (a new one, or one built elsewhere) holds the whole session, and gets Rasa's own count.

        Args:
            tracker: the tracker to store.
        """
        already = stored_event_count(tracker)
        if self._forgets(tracker, already):
            return
        if already is None:

            def count_stored() -> List[Event]:
                with self.session_scope() as session:
                    return list(self._additional_events(session, tracker))

            new_events = await with_retries(count_stored, "reading a conversation")
        else:
            new_events = list(itertools.islice(tracker.events, already, None))
        rows = [self._event_row(tracker.sender_id, event) for event in new_events]
        state = _checkpoint_state(tracker, new_events)

        def insert() -> None:
            with self.engine.begin() as connection:
                if state is None:
                    if rows:
                        connection.execute(_INSERT_EVENTS, rows)
                    return
                if len(rows) > 1:
                    connection.execute(_INSERT_EVENTS, rows[:-1])
                last = connection.execute(_INSERT_EVENTS, rows[-1])  # one row: its id is known
                connection.execute(
                    _INSERT_CHECKPOINT,
                    {"event_id": last.inserted_primary_key[0], "sender_id": tracker.sender_id, "state": state},
                )

        await with_retries(insert, "storing a conversation")
        _mark_stored(tracker, len(tracker.events))
        logger.debug(f"Stored {len(new_events)} new events for '{tracker.sender_id}'")
        if self.event_broker is not None and new_events:
            await self._stream_new_events(self.event_broker, new_events, tracker.sender_id)

    @staticmethod
    def _event_row(sender_id: Text, event: Event) -> Dict[str, Any]:
        """The ``events`` row for one event, as ``SQLTrackerStore.save`` writes it, with user text redacted."""
        data = _redacted_event(event.as_dict())
        intent = data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY)
        return {
            "sender_id": sender_id,
            "type_name": event.type_name,
            "timestamp": data.get("timestamp"),
            "intent_name": intent,
            "action_name": data.get("name"),
            "data": json.dumps(data),
        }

    # ---- privacy: deleting a conversation, reading all of it -------------------------------------

    def _forgets(self, tracker: DialogueStateTracker, already: Optional[int]) -> bool:
        """Deletes the conversation instead of storing this turn, if the turn ran ``FORGET_ACTION``."""
        new_events = itertools.islice(tracker.events, already or 0, None)
        if not any(isinstance(event, ActionExecuted) and event.action_name == FORGET_ACTION for event in new_events):
            return False
        deleted = self.delete_conversation_now(tracker.sender_id)
        _mark_stored(tracker, len(tracker.events))
        logger.debug(f"Deleted the conversation on request ({deleted} events)")
        return True

    def delete_conversation_now(self, sender_id: Text) -> int:
        """Deletes every stored event and checkpoint of a conversation. Returns how many events went.

        The caller should hold the conversation's lock, so no message of it is half-way through.
        """
        with self.engine.begin() as connection:
            deleted = delete_conversation_rows(connection, sender_id)
        truncate_wal(self.engine)
        return deleted

    async def delete_conversation(self, sender_id: Text) -> int:
        """``delete_conversation_now`` for async callers (the widget's quick exit)."""
        return self.delete_conversation_now(sender_id)

    async def visible_events(self, sender_id: Text, limit: int) -> List[Event]:
        """The latest ``limit`` user and bot messages of a conversation, across sessions, oldest first.

        The widget's history shows the whole retained conversation, not the bounded window.
        """
        query = (
            sa.select(EVENTS.c.data)
            .where(EVENTS.c.sender_id == sender_id, EVENTS.c.type_name.in_(("user", "bot")))
            .order_by(EVENTS.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        events = [_deserialise(row.data) for row in reversed(rows)]
        return [event for event in events if event is not None]

    def _load_window(self, connection: Connection, sender_id: Text) -> Optional[Tuple[List[Event], List[Event]]]:
        """Finds the window: returns (rebuilt slot events, window events), or None if no events."""
        limit = self.max_events
        while True:
            stored, complete = self._load_tail(connection, sender_id, limit)
            if complete and not stored:
                return None
            if complete and len(stored) <= self.max_events:
                return [], [item.event for item in stored]
            chosen = self._choose_window(connection, sender_id, stored)
            if chosen is not None:
                return chosen
            if complete:
                logger.debug(f"No window start for '{sender_id}': loading the whole session")
                return [], [item.event for item in stored]
            limit *= 4

    def _load_tail(self, connection: Connection, sender_id: Text, limit: int) -> Tuple[List[_StoredEvent], bool]:
        """The latest ``limit`` events of the latest session, oldest first.

        Returns:
            The events, and whether they reach back to the start of the session.
        """
        rows = connection.execute(_TAIL, {"sender": sender_id, "limit": limit}).all()
        complete = len(rows) < limit
        rows.reverse()
        start = 0
        for index in range(len(rows) - 1, -1, -1):
            if rows[index].type_name == SessionStarted.type_name:
                start, complete = index, True
                break
        stored = []
        for row in rows[start:]:
            event = _deserialise(row.data)
            if event is not None:
                stored.append(_StoredEvent(row.id, row.timestamp, event))
        return stored, complete

    def _choose_window(
        self, connection: Connection, sender_id: Text, stored: Sequence[_StoredEvent]
    ) -> Optional[Tuple[List[Event], List[Event]]]:
        """Picks where the window starts among ``stored`` (see the module's docstring)."""
        starts = [index for index, item in enumerate(stored) if _is_listen(item.event)]
        if not starts:
            return None
        checkpoints = self._checkpoints(connection, sender_id, stored[starts[0]].row_id, stored[starts[-1]].row_id)
        total = len(stored)
        candidates = [i for i in starts if stored[i].row_id in checkpoints]
        # The longest window that fits, else the shortest one that is longer.
        fitting = [i for i in candidates if total - i <= self.max_events]
        longer = [i for i in reversed(candidates) if total - i > self.max_events]
        for index in fitting + longer:
            window = [item.event for item in stored[index:]]
            turns = _applied_user_messages(window)
            if turns is not None and turns >= self.min_turns:
                start = stored[index]
                return self._rebuilt_state(checkpoints[start.row_id], start.timestamp), window
        return None

    @staticmethod
    def _checkpoints(connection: Connection, sender_id: Text, first_id: int, last_id: int) -> Dict[int, str]:
        """The checkpoints of the conversation between two ``events`` row ids, by row id."""
        rows = connection.execute(_CHECKPOINTS_BETWEEN, {"sender": sender_id, "first": first_id, "last": last_id})
        return {int(event_id): str(state) for event_id, state in rows}

    def _rebuilt_state(self, state_json: str, timestamp: Optional[float]) -> List[Event]:
        """The events that put a new tracker in the checkpoint's state."""
        state = json.loads(state_json)
        known = {slot.name for slot in self.domain.slots}
        events: List[Event] = [
            SlotSet(name, value, timestamp) for name, value in state.get("slots", {}).items() if name in known
        ]
        if state.get("paused"):
            events.append(ConversationPaused(timestamp))
        return events
