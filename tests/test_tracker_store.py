"""Conversations persist: the tracker store in endpoints.yml is SQLite by default, PostgreSQL by setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import read_endpoint_config

from tests.conftest import ROOT


def store_from_endpoints(monkeypatch: pytest.MonkeyPatch, url: str) -> TrackerStore:
    monkeypatch.setenv("TRACKER_DB_URL", url)
    monkeypatch.setenv("ACTION_ENDPOINT_URL", "http://127.0.0.1:1/webhook")
    monkeypatch.setenv("ACTION_TOKEN", "t" * 32)  # endpoints.yml sends it to the action server
    config = read_endpoint_config(str(ROOT / "endpoints.yml"), "tracker_store")
    return TrackerStore.create(config, Domain.load(str(ROOT / "domain.yml")))


async def test_a_restart_loses_no_conversation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    first = store_from_endpoints(monkeypatch, url)
    assert isinstance(first, SQLTrackerStore)
    tracker = DialogueStateTracker("someone", slots=[])
    tracker.update(UserUttered("what is the plan", {"name": "ask_plan", "confidence": 1.0}))
    await first.save(tracker)
    # A new store on the same file, as after a restart.
    second = store_from_endpoints(monkeypatch, url)
    restored = await second.retrieve("someone")
    assert restored is not None
    assert restored.latest_message.text == "what is the plan"


def test_postgresql_is_a_setting_away(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKER_DB_URL", "postgresql://rasa:secret@db.example:5432/rasa")
    monkeypatch.setenv("ACTION_ENDPOINT_URL", "http://127.0.0.1:1/webhook")
    monkeypatch.setenv("ACTION_TOKEN", "t" * 32)  # endpoints.yml sends it to the action server
    config = read_endpoint_config(str(ROOT / "endpoints.yml"), "tracker_store")
    assert config.type == "bot.storage.tracker_store.BoundedSQLTrackerStore"
    assert config.url == "postgresql://rasa:secret@db.example:5432/rasa"
    assert SQLTrackerStore.get_db_url(host=config.url) == config.url
