"""Keeps what people type out of every log line, at every level, in every process.

Rasa logs user text in several places: at DEBUG, ``rasa.core.processor`` logs the parsed message
and the slot values, forms log the latest message, Rasa's warnings quote text that starts with
"/", a failed REST message was logged whole at ERROR, and a traceback may quote a message. A
filter on one handler would miss the handlers that other code adds later, and a filter on a
logger misses records that reach it from its children. So ``install()`` works where every record
is made and where structlog renders its events:

1. **While a message is being handled, its text is known.** The channels (``bot/channels/``) and
   the action server (``bot/server/action_server.py``) hold each message's text in
   ``user_text(...)`` for as long as they handle it. A log record factory, installed for the
   whole process, replaces any of those texts in a record with ``[user text removed]``, in its
   message and in its traceback, whichever logger made it: the whole text (as typed,
   JSON-escaped or quoted), and any part of it that shows on its own: two words of it in a row,
   or one word of it with a digit in it, or of ``LONG_WORD_CHARS`` letters or more
   (Rasa's warning about "/" text quotes the part it could not read).
2. **Rasa's structured events never carry the fields that hold text.** Rasa lists them itself
   (``rasa.utils.log_utils._anonymizer``: ``text``, ``parse_data_text``, ``slot_values``,
   ``rasa_events`` and more). A structlog processor in front of Rasa's replaces their values.
3. **Python warnings go through logging** (``logging.captureWarnings``), so Rasa's warnings about
   text that starts with "/" are cleaned by step 1 too.

Texts shorter than ``MIN_TEXT_CHARS`` characters ("hi", "yes") are not looked for: replacing them
would blank out parts of every log line and they say nothing about a person.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections import Counter
from typing import Any, Callable, Dict, Iterable, Iterator, List, MutableMapping, Optional

REMOVED = "[user text removed]"
MIN_TEXT_CHARS = 4
LONG_WORD_CHARS = 10
_WORD = re.compile(r"\w+")

# The keys Rasa's own anonymizer treats as holding user text (rasa/utils/log_utils.py, 3.6).
STRUCTLOG_TEXT_KEYS = frozenset(
    {
        "text",
        "response_text",
        "user_text",
        "slot_values",
        "parse_data_text",
        "parse_data_entities",
        "prediction_events",
        "tracker_latest_message",
        "prefilled_slots",
        "message",
        "response",
        "slot_candidates",
        "rasa_event",
        "rasa_events",
        "tracker_states",
        "current_states",
        "old_states",
        "successes",
        "current_entity",
        "next_entity",
        "states",
        "entity",
        "token_text",
        "user_message",
        "json_message",
        "events",
        "slots",
    }
)

_lock = threading.Lock()
_in_flight: Counter = Counter()
_forms: List[str] = []  # every written form of every text in flight, longest first
_pairs: frozenset = frozenset()  # every two words in a row of every text in flight
_words: frozenset = frozenset()  # every telling single word of every text in flight
_installed = False


def _key(word: str) -> str:
    return word.lower()


def _telling(word: str) -> bool:
    """Whether one word alone may identify what was said (a number, an address, a rare long word)."""
    return len(word) >= 4 and (any(c.isdigit() for c in word) or len(word) >= LONG_WORD_CHARS)


def _written_forms(text: str) -> Iterable[str]:
    """The ways a text shows up in a log line: as typed, JSON-escaped (both ways), ``repr``-quoted."""
    yield text
    yield json.dumps(text)[1:-1]
    yield json.dumps(text, ensure_ascii=False)[1:-1]
    yield repr(text)[1:-1]
    stripped = text.strip()
    if stripped != text:
        yield stripped


def _rebuild_forms() -> None:
    global _forms, _pairs, _words
    forms = {form for text in _in_flight for form in _written_forms(text) if len(form) >= MIN_TEXT_CHARS}
    pairs: set = set()
    words: set = set()
    for text in _in_flight:
        keys = [_key(match.group(0)) for match in _WORD.finditer(text)]
        pairs.update(zip(keys, keys[1:]))
        words.update(key for key in keys if _telling(key))
    _forms = sorted(forms, key=len, reverse=True)
    _pairs, _words = frozenset(pairs), frozenset(words)


@contextlib.contextmanager
def user_text(*texts: Any) -> Iterator[None]:
    """Keeps ``texts`` out of every log record made while the block runs (in any task or thread).

    Args:
        *texts: what a person typed; anything that is not a string of at least ``MIN_TEXT_CHARS``
            characters is ignored.
    """
    kept = [text for text in texts if isinstance(text, str) and len(text.strip()) >= MIN_TEXT_CHARS]
    if not kept:
        yield
        return
    with _lock:
        _in_flight.update(kept)
        _rebuild_forms()
    try:
        yield
    finally:
        with _lock:
            _in_flight.subtract(kept)
            for text in kept:
                if _in_flight[text] <= 0:
                    del _in_flight[text]
            _rebuild_forms()


def scrub(message: str) -> str:
    """Returns ``message`` with every text currently held by ``user_text``, or a telling part of one, replaced."""
    forms, pairs, words = _forms, _pairs, _words
    if not forms or not message:
        return message
    for form in forms:
        if form in message:
            message = message.replace(form, REMOVED)
    return _scrub_parts(message, pairs, words) if pairs or words else message


def _scrub_parts(message: str, pairs: frozenset, words: frozenset) -> str:
    """Replaces each run of words of ``message`` that are two words of a text in a row, or a telling word.

    Words are runs of letters, digits and underscores, so "marker.Continuing" is two words.
    """
    tokens = [(match.start(), match.end(), _key(match.group(0))) for match in _WORD.finditer(message)]
    hit = [key in words for _, _, key in tokens]
    for index in range(len(tokens) - 1):
        if (tokens[index][2], tokens[index + 1][2]) in pairs:
            hit[index] = hit[index + 1] = True
    if not any(hit):
        return message
    out: List[str] = []
    position = index = 0
    while index < len(tokens):
        if not hit[index]:
            index += 1
            continue
        start = tokens[index][0]
        while index + 1 < len(tokens) and hit[index + 1]:
            index += 1
        out.extend((message[position:start], REMOVED))
        position = tokens[index][1]
        index += 1
    out.append(message[position:])
    return "".join(out)


def _clean_record(record: logging.LogRecord) -> None:
    """Rewrites a record in place if its message or traceback holds a text in flight."""
    if not _forms:
        return
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a badly formatted record: keep only its template
        message = str(record.msg)
    cleaned = scrub(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and not record.exc_text:
        rendered = logging.Formatter().formatException(record.exc_info)
        cleaned = scrub(rendered)
        if cleaned != rendered:
            record.exc_text = cleaned
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)


def _record_factory(previous: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _clean_record(record)
        return record

    make_record.__privacy_factory__ = True  # type: ignore[attr-defined]
    return make_record


def drop_text_fields(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: replaces the values of fields that hold user text."""
    for key in STRUCTLOG_TEXT_KEYS.intersection(event_dict):
        if event_dict[key] not in (None, "", [], {}):
            event_dict[key] = REMOVED
    event = event_dict.get("event")
    if isinstance(event, str):
        event_dict["event"] = scrub(event)
    return event_dict


def _install_structlog_processor() -> None:
    """Puts ``drop_text_fields`` first in structlog's processors, for loggers made before and after."""
    try:
        import structlog
    except ImportError:  # the action server's own environment may not have it
        return
    processors = structlog.get_config().get("processors")
    if isinstance(processors, list):
        if drop_text_fields not in processors:
            processors.insert(0, drop_text_fields)  # in place: bound loggers keep this same list
    else:
        structlog.configure(processors=[drop_text_fields, *(processors or [])])


def install() -> None:
    """Installs the record factory, the structlog processor and warning capture (idempotent)."""
    global _installed
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "__privacy_factory__", False):
        logging.setLogRecordFactory(_record_factory(factory))
    _install_structlog_processor()
    logging.captureWarnings(True)
    _installed = True


def installed() -> bool:
    """Whether ``install()`` ran in this process."""
    return _installed and getattr(logging.getLogRecordFactory(), "__privacy_factory__", False)


def texts_in_action_call(call: Optional[Dict[str, Any]]) -> List[str]:
    """What a person typed, as it appears in a call from Rasa to the action server.

    The latest message, the text of every user event, and every slot value that is text.
    """
    if not isinstance(call, dict):
        return []
    tracker = call.get("tracker")
    if not isinstance(tracker, dict):
        return []
    texts: List[str] = []
    latest = tracker.get("latest_message")
    if isinstance(latest, dict) and isinstance(latest.get("text"), str):
        texts.append(latest["text"])
    for event in tracker.get("events") or []:
        if isinstance(event, dict) and event.get("event") == "user" and isinstance(event.get("text"), str):
            texts.append(event["text"])
    slots = tracker.get("slots")
    if isinstance(slots, dict):
        texts.extend(value for value in slots.values() if isinstance(value, str))
    return texts
