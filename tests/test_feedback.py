"""Feedback views: the warning comes first, views are stored with a time, and staff can export them."""

from __future__ import annotations

import csv
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import feedback_store
from actions.feedback import ActionSaveFeedback, ValidateFeedbackForm, about_choice
from tests.conftest import ROOT, tracker_dict


@pytest.fixture(autouse=True)
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "sub" / "feedback.db"
    monkeypatch.setenv("FEEDBACK_DB", str(path))
    return path


def test_a_view_is_stored_with_a_timestamp_in_a_database_created_on_first_use(db: Path) -> None:
    assert not db.exists()
    when = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
    feedback_store.save_view("video", "The video was great!", now=when)
    rows = sqlite3.connect(db).execute("SELECT created_at, about, view FROM feedback").fetchall()
    assert rows == [("2026-11-25T12:00:00+00:00", "video", "The video was great!")]


def test_views_survive_a_restart(db: Path) -> None:
    feedback_store.save_view("plan", "first")
    feedback_store.save_view("assistant", "second")
    # A new connection, as after a restart, sees both.
    assert [v.view for v in feedback_store.all_views(db)] == ["first", "second"]


def test_personal_details_are_removed_before_storing() -> None:
    feedback_store.save_view("plan", "call me on 07700 900123 or mail me@example.com, I live at PR1 2AB")
    stored = feedback_store.all_views()[0].view
    assert "07700" not in stored and "example.com" not in stored and "PR1 2AB" not in stored
    assert "[phone number removed]" in stored and "[email removed]" in stored and "[postcode removed]" in stored


def test_an_empty_view_is_refused() -> None:
    with pytest.raises(ValueError):
        feedback_store.save_view("plan", "   ")


def test_export_to_csv(tmp_path: Path) -> None:
    feedback_store.save_view("video", "Loved it, well done")
    feedback_store.save_view("plan", '=HYPERLINK("http://x")')
    out = tmp_path / "views.csv"
    assert feedback_store.main(["export", str(out)]) == 0
    rows = list(csv.reader(out.open(encoding="utf-8")))
    assert rows[0] == ["id", "created_at", "about", "view"]
    assert rows[1][2:] == ["video", "Loved it, well done"]
    assert rows[2][3].startswith("'=")  # a spreadsheet will not run it as a formula
    assert feedback_store.main(["nonsense"]) == 2


def test_the_warning_comes_before_the_person_types() -> None:
    rules = yaml.safe_load((ROOT / "data" / "rules" / "feedback.yml").read_text())["rules"]
    start = next(r for r in rules if r["steps"][0].get("intent") == "give_feedback")
    assert start["steps"][1] == {"action": "action_start_feedback"}
    assert start["steps"][2] == {"action": "utter_feedback_privacy"}
    assert start["steps"][3] == {"action": "feedback_form"}
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    warning = domain["responses"]["utter_feedback_privacy"][0]["text"]
    assert "name" in warning and "phone number" in warning and "email" in warning
    assert domain["forms"]["feedback_form"]["required_slots"] == ["feedback_about", "feedback_view"]


def test_about_choices() -> None:
    assert about_choice("the video") == "video"
    assert about_choice("ur bot lol") == "assistant"
    assert about_choice("This assistant") == "assistant"
    assert about_choice("the Plan") == "plan"
    assert about_choice("bananas") is None


async def test_the_form_validates_and_the_action_saves(db: Path) -> None:
    dispatcher = CollectingDispatcher()
    form = ValidateFeedbackForm()
    tracker = Tracker.from_dict(tracker_dict("give_feedback"))
    assert form.validate_feedback_about("the video", dispatcher, tracker, {}) == {"feedback_about": "video"}
    assert form.validate_feedback_about("bananas", dispatcher, tracker, {}) == {"feedback_about": None}
    assert form.validate_feedback_view("cancel", dispatcher, tracker, {})["feedback_cancelled"] is True
    tracker = Tracker.from_dict(tracker_dict("x", slots={"feedback_about": "video", "feedback_view": "It was fun"}))
    events = await ActionSaveFeedback().run(dispatcher, tracker, {})
    assert dispatcher.messages[-1]["response"] == "utter_feedback_thanks"
    assert [v.view for v in feedback_store.all_views(db)] == ["It was fun"]
    assert all(e["value"] is None for e in events)


async def test_a_cancelled_form_saves_nothing(db: Path) -> None:
    dispatcher = CollectingDispatcher()
    tracker = Tracker.from_dict(tracker_dict("x", slots={"feedback_about": "plan", "feedback_cancelled": True}))
    await ActionSaveFeedback().run(dispatcher, tracker, {})
    assert dispatcher.messages[-1]["response"] == "utter_feedback_cancelled"
    assert feedback_store.all_views(db) == []
