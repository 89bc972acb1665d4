"""What is stored, for how long, and how it is deleted: the tracker store, retention, erasure, file modes.

bot/storage/tracker_store.py (redacted text kept once, "delete my chat", the whole conversation for
the widget), bot/privacy/retention.py (``make purge``), bot/privacy/erase.py, bot/privacy/files.py.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import List

import pytest
import sqlalchemy as sa
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from actions.constants import ACTION_FORGET_CONVERSATION
from actions.feedback_store import save_view
from bot.privacy import retention
from bot.privacy.erase import FORGET_ACTION
from bot.privacy.files import private_file
from bot.storage.lock_store import SQLLockStore
from bot.storage.tracker_store import BoundedSQLTrackerStore
from tests.conftest import ROOT
from tests.test_tracker_store_bounded import TURNS, Clock, domain, play_turn, session_start  # noqa: F401

DAY = 86400.0
MARKER = "quetzalpineapple"


def store_at(path: Path, domain: Domain, max_events: int = 60) -> BoundedSQLTrackerStore:  # noqa: F811
    return BoundedSQLTrackerStore(domain=domain, host=f"sqlite:///{path}", max_events=max_events)


def rows(path: Path, sql: str, *args: object) -> List[tuple]:
    with sqlite3.connect(path) as connection:
        return connection.execute(sql, args).fetchall()


async def talk(store: BoundedSQLTrackerStore, sender: str, turns: int, clock: Clock) -> DialogueStateTracker:
    reference = DialogueStateTracker(sender, store.domain.slots)
    tracker = reference
    for turn in range(turns):
        events = (session_start(clock) if turn == 0 else []) + TURNS[turn % len(TURNS)](clock)
        tracker = await play_turn(store, reference, events, sender=sender)
    return tracker


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---- what is stored ------------------------------------------------------------------------------


async def test_user_text_is_stored_once_and_redacted(tmp_path: Path, domain: Domain) -> None:  # noqa: F811
    store = store_at(tmp_path / "t.db", domain)
    clock = Clock()
    tracker = await store.get_or_create_tracker("talker", append_action_listen=False)
    typed = f"{MARKER} call me on 07700 900123 or jo dot bloggs at gmail dot com"
    # What the pipeline adds (a normalised copy of the text, entity values) is redacted too.
    parse_data = {"normalised_text": typed.replace("gmail", "email"), "entities": [{"value": "07700 900123"}]}
    tracker.update(
        UserUttered(typed, {"name": "out_of_scope", "confidence": 1.0}, parse_data=parse_data, timestamp=clock())  # type: ignore[arg-type]
    )
    await store.save(tracker)
    (data,) = rows(tmp_path / "t.db", "SELECT data FROM events WHERE type_name = 'user'")[0]
    stored = json.loads(data)
    assert "07700" not in data and "gmail" not in data and "bloggs" not in data
    assert stored["parse_data"]["normalised_text"].startswith(MARKER)
    assert stored["text"].startswith(MARKER) and "[phone number removed]" in stored["text"]
    assert "text" not in stored["parse_data"]  # once, not twice
    back = await store.retrieve("talker")
    assert back is not None and back.latest_message is not None
    assert back.latest_message.text == stored["text"] == back.latest_message.parse_data["text"]


async def test_database_files_are_private(tmp_path: Path, domain: Domain) -> None:  # noqa: F811
    path = tmp_path / "t.db"
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    store = store_at(path, domain)
    await talk(store, "someone", 2, Clock())
    for name in ("t.db", "t.db-wal", "t.db-shm"):
        if (tmp_path / name).exists():
            assert file_mode(tmp_path / name) == 0o600, name
    fresh = private_file(tmp_path / "sub" / "feedback.db")
    assert file_mode(fresh) == 0o600 and fresh.stat().st_size == 0


# ---- "delete my chat" ------------------------------------------------------------------------------


def test_the_action_and_the_store_agree_on_the_name() -> None:
    assert FORGET_ACTION == ACTION_FORGET_CONVERSATION
    assert FORGET_ACTION in Domain.load(str(ROOT / "domain.yml")).action_names_or_texts


async def test_a_turn_that_forgets_deletes_the_whole_conversation_and_nothing_else(
    tmp_path: Path, domain: Domain  # noqa: F811
) -> None:
    path = tmp_path / "t.db"
    store = store_at(path, domain, max_events=20)
    clock = Clock()
    await talk(store, "stays", 3, clock)
    tracker = await talk(store, "goes", 25, clock)
    tracker.update(UserUttered(f"what I told you: {MARKER}", {"name": "out_of_scope", "confidence": 1.0}))
    tracker.update(ActionExecuted("action_listen", timestamp=clock()))
    await store.save(tracker)
    assert MARKER.encode() in path.read_bytes() + (tmp_path / "t.db-wal").read_bytes()
    assert rows(path, "SELECT count(*) FROM tracker_checkpoints WHERE sender_id = 'goes'")[0][0] > 0
    tracker = await store.retrieve("goes")
    assert tracker is not None
    for event in [
        UserUttered("yes", {"name": "affirm", "confidence": 1.0}, timestamp=clock()),
        ActionExecuted(FORGET_ACTION, timestamp=clock()),
        BotUttered("Done. I've deleted this chat.", timestamp=clock()),
        ActionExecuted("action_listen", timestamp=clock()),
    ]:
        tracker.update(event)
    await store.save(tracker)
    assert rows(path, "SELECT count(*) FROM events WHERE sender_id = 'goes'") == [(0,)]
    assert rows(path, "SELECT count(*) FROM tracker_checkpoints WHERE sender_id = 'goes'") == [(0,)]
    assert rows(path, "SELECT count(*) FROM events WHERE sender_id = 'stays'")[0][0] > 0
    assert await store.retrieve("goes") is None  # the next message starts a new conversation
    # Deleted words do not linger in the database file or its write-ahead log.
    for name in ("t.db", "t.db-wal"):
        if (tmp_path / name).exists():
            assert MARKER.encode() not in (tmp_path / name).read_bytes(), name


async def test_delete_conversation_for_the_widgets_quick_exit(tmp_path: Path, domain: Domain) -> None:  # noqa: F811
    path = tmp_path / "t.db"
    store = store_at(path, domain)
    await talk(store, "widget:abc", 4, Clock())
    assert await store.delete_conversation("widget:abc") > 0
    assert rows(path, "SELECT count(*) FROM events WHERE sender_id = 'widget:abc'") == [(0,)]
    assert await store.delete_conversation("widget:abc") == 0  # twice is harmless


async def test_the_widget_history_reads_the_whole_retained_conversation(
    tmp_path: Path, domain: Domain  # noqa: F811
) -> None:
    store = store_at(tmp_path / "t.db", domain, max_events=20)
    await talk(store, "long", 30, Clock())
    window = await store.retrieve("long")
    visible: List[Event] = await store.visible_events("long", 1000)
    assert window is not None
    first_user = next(e for e in visible if isinstance(e, UserUttered))
    assert first_user.text == "hi"  # turn 1, long out of the bounded window
    assert sum(isinstance(e, UserUttered) for e in visible) > sum(isinstance(e, UserUttered) for e in window.events)
    assert all(isinstance(e, (UserUttered, BotUttered)) for e in visible)
    assert len(await store.visible_events("long", 5)) == 5


# ---- retention -----------------------------------------------------------------------------------


async def test_purge_deletes_what_is_older_than_the_limit_and_keeps_the_rest(
    tmp_path: Path, domain: Domain  # noqa: F811
) -> None:
    path = tmp_path / "t.db"
    store = store_at(path, domain, max_events=20)
    old_clock, new_clock = Clock(), Clock()
    old_clock.now = time.time() - 40 * DAY
    await talk(store, "old", 12, old_clock)
    await talk(store, "recent", 3, new_clock)
    locks = SQLLockStore(f"sqlite:///{path}")
    async with locks.lock("recent"):
        pass
    with sa.create_engine(f"sqlite:///{path}").begin() as connection:  # a ticket of a crashed process
        connection.execute(
            sa.text(
                "INSERT INTO conversation_locks (conversation_id, owner, expires, deadline) "
                "VALUES ('old', 'gone', 1.0, 1.0)"
            )
        )
    feedback = tmp_path / "feedback.db"
    save_view("plan", "an old view", path=feedback, now=datetime.fromtimestamp(time.time() - 31 * DAY, timezone.utc))
    save_view("plan", "a new view", path=feedback)

    result = retention.purge(f"sqlite:///{path}", feedback, days=30)

    assert rows(path, "SELECT count(*) FROM events WHERE sender_id = 'old'") == [(0,)]
    assert rows(path, "SELECT count(*) FROM tracker_checkpoints WHERE sender_id = 'old'") == [(0,)]
    assert rows(path, "SELECT count(*) FROM events WHERE sender_id = 'recent'")[0][0] > 0
    assert rows(path, "SELECT count(*) FROM tracker_checkpoints WHERE sender_id = 'recent'")[0][0] > 0
    assert rows(path, "SELECT count(*) FROM conversation_locks") == [(0,)]
    assert [v for (v,) in rows(feedback, "SELECT view FROM feedback")] == ["a new view"]
    assert result.deleted["events"] > 0 and result.deleted["feedback"] == 1
    assert "Deleted everything stored before" in result.summary()
    assert await store.retrieve("recent") is not None


def test_retention_days_setting() -> None:
    assert retention.retention_days({}) == 30
    assert retention.retention_days({"RETENTION_DAYS": "7"}) == 7
    for bad in ("0", "-3", "thirty", "1.5"):
        with pytest.raises(retention.RetentionSettingsError):
            retention.retention_days({"RETENTION_DAYS": bad})


def test_make_purge_runs_from_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, timestamp REAL, data TEXT)")
        old, new = time.time() - 40 * DAY, time.time()
        connection.execute("INSERT INTO events (sender_id, timestamp) VALUES ('old', ?), ('new', ?)", (old, new))
    env = {**os.environ, "TRACKER_DB_URL": f"sqlite:///{path}", "FEEDBACK_DB": str(tmp_path / "none.db")}
    done = subprocess.run(["make", "-s", "purge"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Deleted everything stored before" in done.stdout and "1 from events" in done.stdout
    assert rows(path, "SELECT sender_id FROM events") == [("new",)]
    assert file_mode(path) == 0o600
    bad = subprocess.run(
        [sys.executable, "-m", "bot.privacy.retention"],
        cwd=ROOT,
        env={**env, "RETENTION_DAYS": "0"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "RETENTION_DAYS must be at least 1" in bad.stderr


def test_make_forget_deletes_one_named_conversation(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, timestamp REAL, data TEXT)")
        connection.execute("INSERT INTO events (sender_id, timestamp) VALUES ('widget:abc', 1.0), ('other', 1.0)")
    env = {**os.environ, "TRACKER_DB_URL": f"sqlite:///{path}"}
    done = subprocess.run(
        ["make", "-s", "forget", "ID=widget:abc"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "widget:abc: 1 events deleted" in done.stdout
    assert rows(path, "SELECT sender_id FROM events") == [("other",)]
    assert subprocess.run(["make", "-s", "forget"], cwd=ROOT, capture_output=True, timeout=300).returncode == 2
