"""Where feedback views are kept: an SQLite database, created on first use.

Staff export every view with ``make export-feedback`` (``python -m actions.feedback_store export FILE.csv``).
The database file is ``$FEEDBACK_DB`` (default ``var/feedback.db``). No names or contact details are
asked for, and contact details, addresses, postcodes, handles and names given with a school are
removed before a view is stored (``bot/privacy/redact.py``). Views older than ``RETENTION_DAYS`` are
deleted (``bot/privacy/retention.py``).
"""

from __future__ import annotations

import csv
import os
import sqlite3
import sys
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional

from bot.privacy.redact import redact

FEEDBACK_DB_ENV = "FEEDBACK_DB"
DEFAULT_DB = Path(__file__).resolve().parent.parent / "var" / "feedback.db"
MAX_VIEW_CHARS = 2000

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    about TEXT NOT NULL,
    view TEXT NOT NULL
)
"""

@dataclass(frozen=True)
class View:
    """One stored view."""

    id: int
    created_at: str
    about: str
    view: str


def db_path() -> Path:
    """Returns the database file in use."""
    configured = os.environ.get(FEEDBACK_DB_ENV)
    return Path(configured) if configured else DEFAULT_DB


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=10)
    connection.execute(SCHEMA)
    return connection


def save_view(about: str, view: str, path: Optional[Path] = None, now: Optional[datetime] = None) -> int:
    """Stores a view with the time it was given (UTC). Returns its id.

    Args:
        about: what the view is about (the Plan, the video, the assistant).
        view: what the person said; personal details are removed first.
        path: the database (default: ``db_path()``).
        now: the time to record (for tests).

    Raises:
        ValueError: if the view is empty.
    """
    cleaned = redact(view.strip())[:MAX_VIEW_CHARS]
    if not cleaned:
        raise ValueError("an empty view is not stored")
    stamp = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    with closing(_connect(path or db_path())) as connection, connection:
        cursor = connection.execute(
            "INSERT INTO feedback (created_at, about, view) VALUES (?, ?, ?)", (stamp, about, cleaned)
        )
        return int(cursor.lastrowid or 0)


def all_views(path: Optional[Path] = None) -> List[View]:
    """Returns every stored view, oldest first."""
    with closing(_connect(path or db_path())) as connection:
        rows = connection.execute("SELECT id, created_at, about, view FROM feedback ORDER BY id").fetchall()
    return [View(*row) for row in rows]


def export_csv(out: Path, path: Optional[Path] = None) -> int:
    """Writes every view to a CSV file for staff. Returns how many were written."""
    views = all_views(path)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "created_at", "about", "view"])
        for view in views:
            writer.writerow([view.id, view.created_at, view.about, _csv_safe(view.view)])
    return len(views)


def _csv_safe(text: str) -> str:
    """Stops a spreadsheet from running a view as a formula (CSV injection)."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def main(argv: List[str]) -> int:
    """Command line: ``python -m actions.feedback_store export FILE.csv``."""
    if len(argv) != 2 or argv[0] != "export":
        print("usage: python -m actions.feedback_store export FILE.csv", file=sys.stderr)
        return 2
    count = export_csv(Path(argv[1]))
    print(f"Wrote {count} views from {db_path()} to {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
