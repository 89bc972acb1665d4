"""End to end: `make import-services` from the fictional feed on a local port, then parents ask the real servers."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
import uuid
from typing import Any, Dict, Iterator, List

import pytest

from tests.conftest import ROOT, LiveServer
from tests.openreferral_feed import FeedServer

NO_DIRECTORY = "I don't have contact details for Chorley yet"


def sender() -> str:
    return f"test-services-{uuid.uuid4().hex}"


def joined(messages: List[Dict[str, Any]]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


def import_services(live_server: LiveServer, source: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SERVICES_FILE=str(live_server.services_file))
    command = ["make", "-s", "import-services", f"FROM={source}"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


def wait_for_reply(live_server: LiveServer, question: str, wanted: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    reply = ""
    while time.monotonic() < deadline:
        reply = live_server.texts(sender(), question)
        if wanted in reply:
            return reply
        time.sleep(0.3)
    raise AssertionError(f"no {wanted!r} within {timeout} s; last reply: {reply!r}")


@pytest.fixture(scope="module")
def directory(live_server: LiveServer) -> Iterator[FeedServer]:
    """The fixture feed imported into the running assistant; removed afterwards (the assistant goes back)."""
    with FeedServer() as feed:
        done = import_services(live_server, f"{feed.url}/good")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "read 14, valid 10, skipped 4" in done.stdout
        try:
            wait_for_reply(live_server, "is there early help in Chorley", "Example Family Hub Chorley")
            yield feed
        finally:
            live_server.services_file.unlink(missing_ok=True)
            wait_for_reply(live_server, "is there early help in Chorley", NO_DIRECTORY)


def test_a_parent_asks_about_a_town_then_for_more_then_where_it_comes_from(
    live_server: LiveServer, directory: FeedServer
) -> None:
    user = sender()
    messages = live_server.say(user, "is there early help in Chorley")
    reply = joined(messages)
    assert "I found 6 services near Chorley." in reply
    assert "Example Family Hub Chorley" in reply and "Phone: 01632 960102" in reply
    assert f"They come from the directory at {directory.url}/good." in reply and "I copied it on" in reply
    links = [link for m in messages for link in (m.get("custom") or {}).get("links", [])]
    assert {"type": "tel", "href": "tel:+441632960102", "text": "01632 960102",
            "label": "Call Example Family Hub Chorley, 01632 960102"} in links  # fmt: skip
    buttons = [b for m in messages for b in m.get("buttons", [])]
    # "More services" comes first; the next steps (a person to talk to among them) follow it.
    assert buttons[0] == {"title": "More services", "payload": "/ask_more_services"}
    assert len(buttons) <= 3 and len({b["payload"] for b in buttons}) == len(buttons)
    assert any(b["payload"] == "/ask_human" for b in buttons[1:]), buttons

    more = joined(live_server.say(user, buttons[0]["payload"]))
    assert "Here are more services near Chorley." in more and "Wobbly Wellies Toddler Group" in more
    assert "Example Lancashire Parent Line" in more

    source = live_server.texts(user, "where does that come from?")
    assert f"directory at {directory.url}/good" in source


@pytest.mark.parametrize(
    "question, first, absent",
    [
        ("family support near PR7", "Example Family Hub Chorley", "Lighthouse Example Youth Club"),
        ("help for my toddler's behaviour in Skelmersdale", "Calm Corner Parenting Course", "Muddy Boots"),
        ("something for teenagers in Burnley", "Lighthouse Example Youth Club", "Tiny Steps Baby Massage"),
        ("any clubs 4 13 yr olds in padiham", "Lighthouse Example Youth Club", "Tiny Steps Baby Massage"),
    ],
)
def test_a_place_a_postcode_an_age_or_a_stage_gets_the_matching_services(
    live_server: LiveServer, directory: FeedServer, question: str, first: str, absent: str
) -> None:
    reply = live_server.texts(sender(), question)
    assert first in reply and absent not in reply, reply
    assert "I copied it on" in reply


def test_a_full_postcode_is_cut_to_its_first_part_and_not_kept_in_any_slot(
    live_server: LiveServer, directory: FeedServer
) -> None:
    user = sender()
    reply = live_server.texts(user, "we live at PR7 9ZZ, is there anything for my 3 year old")
    assert "I only use the first part of your postcode: PR7." in reply
    assert "Wobbly Wellies Toddler Group" in reply
    db = sqlite3.connect(live_server.tracker_db)
    slot_rows = db.execute(
        "SELECT data FROM events WHERE sender_id = ? AND type_name = 'slot'", (user,)
    ).fetchall()
    checkpoints = db.execute("SELECT state FROM tracker_checkpoints WHERE sender_id = ?", (user,)).fetchall()
    assert slot_rows and not any("9ZZ" in row[0].upper() for row in slot_rows + checkpoints)


def test_a_failed_import_leaves_the_answers_as_they_were(live_server: LiveServer, directory: FeedServer) -> None:
    before = live_server.services_file.read_bytes()
    done = import_services(live_server, f"{directory.url}/http-500")
    assert done.returncode != 0 and "HTTP 500" in done.stderr and "left as it was" in done.stderr
    assert live_server.services_file.read_bytes() == before
    assert "Example Family Hub Chorley" in live_server.texts(sender(), "is there early help in Chorley")
