"""Where feedback views are kept: the table ``feedback`` in the assistant's database.

Staff export every view with ``make export-feedback`` (``python -m actions.feedback_store export FILE.csv``).
The database is ``$FEEDBACK_DB_URL``, by default the conversations' own (``$TRACKER_DB_URL``), so
every replica of a deployment writes to the one database (``make migrate`` makes the table; a
local SQLite file is migrated on first use). No names or contact details are asked for, and
anything that looks like an email address, a phone number or a postcode is removed before a
view is stored.
"""

from __future__ import annotations

import csv
import functools
import os
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional, Union

import sqlalchemy as sa

from bot.storage.engine import engine_for

FEEDBACK_DB_URL_ENV = "FEEDBACK_DB_URL"
TRACKER_DB_URL_ENV = "TRACKER_DB_URL"
DEFAULT_URL = f"sqlite:///{Path(__file__).resolve().parent.parent / 'var' / 'tracker.db'}"
MAX_VIEW_CHARS = 2000

FEEDBACK = sa.Table(
    "feedback",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("about", sa.Text, nullable=False),
    sa.Column("view", sa.Text, nullable=False),
)

_REDACTIONS = [
    (re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"), "[email removed]"),
    (re.compile(r"(\+44\s?|\b0)(\d[\s-]?){9,10}\b"), "[phone number removed]"),
    (re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b", re.IGNORECASE), "[postcode removed]"),
]


@dataclass(frozen=True)
class View:
    """One stored view."""

    id: int
    created_at: str
    about: str
    view: str


def redact(text: str) -> str:
    """Removes what looks like an email address, a UK phone number or a postcode."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


Database = Union[str, Path, None]


def db_url(database: Database = None) -> str:
    """The database in use: ``database`` (a URL, or a SQLite file's path), else the configured one."""
    if isinstance(database, Path):
        return f"sqlite:///{database}"
    if database:
        return database
    return os.environ.get(FEEDBACK_DB_URL_ENV) or os.environ.get(TRACKER_DB_URL_ENV) or DEFAULT_URL


@functools.lru_cache(maxsize=None)
def _migrated_engine(url: str) -> sa.engine.Engine:
    """The engine for ``url``; a local SQLite file gets its tables on first use.

    A shared database is migrated by ``make migrate``, never by the action server.

    Raises:
        SchemaNotCurrentError: a shared database was not migrated.
    """
    from bot.storage.migrate import ensure_schema

    ensure_schema(url)
    return engine_for(url)


def save_view(about: str, view: str, path: Database = None, now: Optional[datetime] = None) -> int:
    """Stores a view with the time it was given (UTC). Returns its id.

    Args:
        about: what the view is about (the Plan, the video, the assistant).
        view: what the person said; personal details are removed first.
        path: the database (default: ``db_url()``).
        now: the time to record (for tests).

    Raises:
        ValueError: if the view is empty.
        sqlalchemy.exc.SQLAlchemyError: the database failed.
    """
    cleaned = redact(view.strip())[:MAX_VIEW_CHARS]
    if not cleaned:
        raise ValueError("an empty view is not stored")
    stamp = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    with _migrated_engine(db_url(path)).begin() as connection:
        result = connection.execute(FEEDBACK.insert().values(created_at=stamp, about=about, view=cleaned))
        return int(result.inserted_primary_key[0])


def all_views(path: Database = None) -> List[View]:
    """Returns every stored view, oldest first."""
    query = sa.select(FEEDBACK.c.id, FEEDBACK.c.created_at, FEEDBACK.c.about, FEEDBACK.c.view).order_by(FEEDBACK.c.id)
    with _migrated_engine(db_url(path)).connect() as connection:
        rows = connection.execute(query).all()
    return [View(int(row[0]), str(row[1]), str(row[2]), str(row[3])) for row in rows]


def export_csv(out: Path, path: Database = None) -> int:
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
    shown = sa.engine.make_url(db_url()).render_as_string(hide_password=True)
    print(f"Wrote {count} views from {shown} to {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
