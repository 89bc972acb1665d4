"""No user text in any log line (bot/privacy/logs.py): records, tracebacks, structlog events, warnings.

The same filter is checked end to end, through every channel of the real servers at DEBUG level,
in tests/test_security_live.py.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from typing import Iterator

import pytest
import structlog

from bot.privacy import logs
from tests.conftest import ROOT

MARKER = "zanzibarquokka"
TEXT = f"my secret is {MARKER} call 07700900123"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """A handler added *after* the filter was installed, at DEBUG, on a logger of its own."""
    logs.install()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    logger = logging.getLogger("tests.privacy.child")
    parent = logging.getLogger("tests.privacy")
    parent.addHandler(handler)
    parent.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        parent.removeHandler(handler)
        assert logger is not None


def test_a_text_in_flight_never_reaches_a_handler_in_any_form(captured: io.StringIO) -> None:
    log = logging.getLogger("tests.privacy.child")  # a child: its records propagate to the handler
    with logs.user_text(TEXT):
        log.debug("Received user message '%s'", TEXT)
        log.info(f"json: {json.dumps({'text': TEXT})}")
        log.warning("repr: %r", TEXT)
        log.error("stripped: %s!", TEXT.strip())
    text = captured.getvalue()
    assert MARKER not in text and "07700900123" not in text
    assert text.count(logs.REMOVED) >= 4


def test_a_non_ascii_text_is_removed_when_json_escaped_too(captured: io.StringIO) -> None:
    typed = f"je suis très triste {MARKER} 😢"
    with logs.user_text(typed):
        logging.getLogger("tests.privacy.child").debug(json.dumps({"text": typed}))
    assert MARKER not in captured.getvalue() and "\\ud83d" not in captured.getvalue()


def test_parts_of_a_text_are_removed_as_rasas_slash_warning_quotes_them(captured: io.StringIO) -> None:
    typed = f"/greet@1 i want to die {MARKER}"
    with logs.user_text(typed):
        logging.getLogger("tests.privacy.child").warning(
            "Failed to parse arguments in line '%s'. Continuing without  i want to die %s. ", typed, MARKER
        )
        logging.getLogger("tests.privacy.child").warning("left over: %s", MARKER)
    assert MARKER not in captured.getvalue() and "want to die" not in captured.getvalue()


def test_a_traceback_that_quotes_the_text_is_cleaned(captured: io.StringIO) -> None:
    with logs.user_text(TEXT):
        try:
            raise ValueError(f"could not handle {TEXT!r}")
        except ValueError:
            logging.getLogger("tests.privacy.child").exception("failed")
    text = captured.getvalue()
    assert "Traceback" in text and "ValueError" in text  # the operator still sees what failed
    assert MARKER not in text


def test_warnings_go_through_the_filter() -> None:
    """Run in a process of its own: pytest records warnings itself."""
    script = (
        "import logging, warnings\n"
        "from bot.privacy import logs\n"
        "logging.basicConfig(level=logging.DEBUG)\n"
        "logs.install()\n"
        f"with logs.user_text({TEXT!r}):\n"
        f"    warnings.warn('odd text ' + {TEXT!r}, UserWarning)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "odd text" in done.stderr and MARKER not in done.stderr + done.stdout


def test_after_the_message_its_text_is_no_longer_looked_for(captured: io.StringIO) -> None:
    with logs.user_text(TEXT):
        pass
    logging.getLogger("tests.privacy.child").info("the words 'my secret is' are just words now")
    assert logs.REMOVED not in captured.getvalue()


def test_nested_and_concurrent_texts_are_counted() -> None:
    with logs.user_text(TEXT):
        with logs.user_text(TEXT, "another message here"):
            assert logs.scrub(f"x {TEXT} y another message here") == f"x {logs.REMOVED} y {logs.REMOVED}"
        assert logs.scrub(TEXT) == logs.REMOVED  # still in flight once
    assert logs.scrub(TEXT) == TEXT


def test_short_texts_are_not_looked_for() -> None:
    with logs.user_text("hi", "yes"):
        assert logs.scrub("this is yes and hi") == "this is yes and hi"


def test_rasas_structured_events_lose_their_text_fields() -> None:
    logs.install()
    processors = structlog.get_config()["processors"]
    assert processors[0] is logs.drop_text_fields
    event = logs.drop_text_fields(
        None, "debug", {"event": "processor.message.parse", "parse_data_text": TEXT, "slot_values": {"a": TEXT}}
    )
    assert event == {"event": "processor.message.parse", "parse_data_text": logs.REMOVED, "slot_values": logs.REMOVED}


def test_install_is_idempotent() -> None:
    logs.install()
    factory = logging.getLogRecordFactory()
    logs.install()
    assert logging.getLogRecordFactory() is factory and logs.installed()


def test_texts_of_an_action_call() -> None:
    call = {
        "tracker": {
            "latest_message": {"text": "latest words"},
            "events": [{"event": "user", "text": "earlier words"}, {"event": "bot", "text": "bot words"}],
            "slots": {"feedback_view": "my view", "currency_told": True},
        }
    }
    assert sorted(logs.texts_in_action_call(call)) == ["earlier words", "latest words", "my view"]
    assert logs.texts_in_action_call(None) == [] and logs.texts_in_action_call({"tracker": []}) == []
