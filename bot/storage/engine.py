"""Database engines for the tracker store and the lock store, kept cheap per message.

SQLAlchemy 1.4 opens and closes a new connection to a SQLite file for every session, and
SQLite's default journal syncs the disk twice per commit: together about a sixth of the Rasa
server's CPU per message (py-spy, ``python -m bench.run --profile``). For a SQLite file,
``engine_for`` keeps a small pool of connections instead, each one with ``journal_mode=WAL``
(readers do not block the writer, and several server processes can share the file) and
``synchronous=NORMAL`` (a commit survives a crash of the process; a power cut may lose the last
few commits, never corrupt the file). Other databases (PostgreSQL) get Rasa's own settings.
"""

from __future__ import annotations

from typing import Any, Union

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import QueuePool

# SQLite connections kept open per server process, and how long a writer waits for another.
SQLITE_POOL_SIZE = 4
SQLITE_BUSY_TIMEOUT_S = 10.0


def is_sqlite_file(url: Union[str, URL]) -> bool:
    """Whether the URL is a SQLite database in a file (not in memory)."""
    parsed = sa.engine.make_url(url)
    database = parsed.database or ""
    return parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:") and "mode=memory" not in database


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Sets WAL mode and NORMAL syncing on a new SQLite connection."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def engine_for(url: Union[str, URL]) -> Engine:
    """An engine for ``url``: pooled WAL connections for a SQLite file, else Rasa's settings.

    Args:
        url: an SQLAlchemy URL, e.g. ``sqlite:///var/tracker.db`` or ``postgresql://...``.

    Returns:
        The engine.
    """
    if not is_sqlite_file(url):
        from rasa.core.tracker_store import create_engine_kwargs

        return sa.create_engine(url, **create_engine_kwargs(url))
    engine = sa.create_engine(
        url,
        poolclass=QueuePool,
        pool_size=SQLITE_POOL_SIZE,
        max_overflow=SQLITE_POOL_SIZE,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
    )
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def create_tables(engine: Engine, metadata: sa.MetaData) -> None:
    """Creates the tables of ``metadata`` that are missing.

    Server processes starting together may race to create them: the losers get an error from the
    database (PostgreSQL: a duplicate type, SQLite: table exists) while the winner creates them.
    That error is ignored when the tables are there afterwards, and raised when they are not.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the tables could not be created.
    """
    try:
        metadata.create_all(engine)
    except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError):
        existing = set(sa.inspect(engine).get_table_names())
        if not set(metadata.tables) <= existing:
            raise
