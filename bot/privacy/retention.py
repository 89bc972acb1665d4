"""Nothing kept longer than ``RETENTION_DAYS`` (default 30): conversations, checkpoints, locks, feedback.

``purge`` deletes, in the tracker database (``TRACKER_DB_URL``), every event older than the limit,
the checkpoints left without their event and the expired lock rows, and in the feedback database
(``FEEDBACK_DB``) every view older than the limit. It runs:

- by hand: ``make purge`` (``python -m bot.privacy.retention``, ``--days N`` to override);
- when the action server starts, and then every ``PURGE_INTERVAL_S`` (one hour) while it runs
  (``bot/server/action_server.py``; one action server per replica, and purging twice is harmless).

A conversation still in use loses only its messages that are older than the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sqlite3
import sys
import time
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Mapping, Optional

import sqlalchemy as sa

from bot.privacy.erase import delete_older_than
from bot.privacy.files import private_database, private_file

logger = logging.getLogger(__name__)

RETENTION_ENV = "RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 30
PURGE_INTERVAL_S = 3600.0
DAY_S = 86400.0


class RetentionSettingsError(ValueError):
    """``RETENTION_DAYS`` is not a whole number of days of at least 1."""


def retention_days(environ: Mapping[str, str]) -> int:
    """Reads ``RETENTION_DAYS`` (default 30).

    Raises:
        RetentionSettingsError: if it is not a whole number of at least 1.
    """
    raw = environ.get(RETENTION_ENV, "").strip()
    if not raw:
        return DEFAULT_RETENTION_DAYS
    try:
        days = int(raw)
    except ValueError:
        raise RetentionSettingsError(f"{RETENTION_ENV} must be a whole number of days, not {raw!r}") from None
    if days < 1:
        raise RetentionSettingsError(f"{RETENTION_ENV} must be at least 1 (day), not {days}")
    return days


@dataclass(frozen=True)
class PurgeResult:
    """How many rows a purge deleted, per table."""

    cutoff: float
    deleted: Dict[str, int]

    def summary(self) -> str:
        """One line for people: the cutoff date and the counts."""
        when = datetime.fromtimestamp(self.cutoff, timezone.utc).isoformat(timespec="seconds")
        counts = ", ".join(f"{count} from {table}" for table, count in self.deleted.items())
        return f"Deleted everything stored before {when}: {counts}."


def purge_feedback(path: Path, cutoff: float) -> int:
    """Deletes feedback views given before ``cutoff`` from the SQLite feedback database."""
    if not path.exists():
        return 0
    private_file(path)
    stamp = datetime.fromtimestamp(cutoff, timezone.utc).isoformat(timespec="seconds")
    with closing(sqlite3.connect(path, timeout=10)) as connection, connection:
        connection.execute("PRAGMA secure_delete = ON")
        exists = connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'feedback'").fetchone()
        if not exists:
            return 0
        return int(connection.execute("DELETE FROM feedback WHERE created_at < ?", (stamp,)).rowcount or 0)


def purge(
    tracker_url: Optional[str], feedback_db: Optional[Path], days: int, now: Optional[float] = None
) -> PurgeResult:
    """Deletes everything older than ``days`` days.

    Args:
        tracker_url: the tracker database's SQLAlchemy URL (None: skip it).
        feedback_db: the feedback SQLite file (None: skip it).
        days: the retention limit.
        now: the current time in seconds since 1970 (for tests).
    """
    now = time.time() if now is None else now
    cutoff = now - days * DAY_S
    deleted: Dict[str, int] = {}
    if tracker_url:
        private_database(tracker_url)
        engine = sa.create_engine(tracker_url, pool_pre_ping=True)
        try:
            deleted.update(delete_older_than(engine, cutoff, now=now))
        finally:
            engine.dispose()
    if feedback_db is not None:
        deleted["feedback"] = purge_feedback(feedback_db, cutoff)
    return PurgeResult(cutoff, deleted)


def purge_from_env(environ: Mapping[str, str], days: Optional[int] = None) -> PurgeResult:
    """``purge`` with the databases and the limit of the environment."""
    feedback = environ.get("FEEDBACK_DB")
    return purge(
        environ.get("TRACKER_DB_URL") or None,
        Path(feedback) if feedback else None,
        days if days is not None else retention_days(environ),
    )


async def purge_periodically(environ: Mapping[str, str], interval_s: float = PURGE_INTERVAL_S) -> None:
    """Purges now and then every ``interval_s`` seconds, until cancelled. Failures are logged, not raised."""
    while True:
        try:
            result = await asyncio.to_thread(purge_from_env, dict(environ))
            logger.info(result.summary())
        except Exception as error:  # noqa: BLE001 - the next round tries again
            logger.error("Retention purge failed (%s); it runs again in %.0f s.", type(error).__name__, interval_s)
        await asyncio.sleep(interval_s)


def main(argv: List[str]) -> int:
    """Command line: ``python -m bot.privacy.retention [--days N]`` (``make purge``)."""
    parser = argparse.ArgumentParser(description="Delete stored conversations and feedback older than the limit.")
    parser.add_argument("--days", type=int, help=f"override {RETENTION_ENV} (default {DEFAULT_RETENTION_DAYS})")
    args = parser.parse_args(argv)
    from bot.server.serve import settings  # the same defaults as `make run`

    env = settings(dict(os.environ))
    try:
        days = args.days if args.days is not None else retention_days(env)
        if days < 1:
            raise RetentionSettingsError("--days must be at least 1")
        result = purge_from_env(env, days)
    except (RetentionSettingsError, sa.exc.SQLAlchemyError, sqlite3.Error) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
