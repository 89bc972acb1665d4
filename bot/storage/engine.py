"""Database engines for the tracker, lock and feedback stores: one per database per process.

SQLite (the default, one machine): SQLAlchemy 1.4 opens and closes a new connection to a SQLite
file for every session, and SQLite's default journal syncs the disk twice per commit: together
about a sixth of the Rasa server's CPU per message (py-spy, ``python -m bench.run --profile``).
For a SQLite file, ``engine_for`` keeps a small pool of connections instead, each one with
``journal_mode=WAL`` (readers do not block the writer, and several server processes can share
the file) and ``synchronous=NORMAL`` (a commit survives a crash of the process; a power cut may
lose the last few commits, never corrupt the file).

Other databases (PostgreSQL, shared by several replicas): a small pool per process
(``SQL_POOL_SIZE``, ``SQL_MAX_OVERFLOW``), every connection checked before use (``pool_pre_ping``:
after the database restarts, a dead pooled connection is replaced instead of failing a message),
and a bounded wait to connect. ``with_retries`` runs a statement again while the database is
briefly unreachable (``DB_RETRY_SECONDS``), so a restart costs a pause, not a conversation.

Every store of one process shares one engine per URL, so one process holds one pool.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from typing import Any, Callable, TypeVar, Union

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import QueuePool

logger = logging.getLogger(__name__)

# SQLite connections kept open per server process, and how long a writer waits for another.
SQLITE_POOL_SIZE = 4
SQLITE_BUSY_TIMEOUT_S = 10.0
# Other databases: connections per process. Each Rasa process runs its statements one at a
# time on its event loop, plus the lock store's lease thread: a few are plenty.
DEFAULT_POOL_SIZE = 5
DEFAULT_MAX_OVERFLOW = 5
CONNECT_TIMEOUT_S = 3
RECYCLE_S = 1800
# How long a statement is tried again while the database is unreachable (seconds).
DEFAULT_RETRY_SECONDS = 15.0
RETRY_FIRST_PAUSE_S = 0.1
RETRY_MAX_PAUSE_S = 1.0

T = TypeVar("T")


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


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value.isdigit() else default


@functools.lru_cache(maxsize=None)
def _engine(url: str) -> Engine:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and not is_sqlite_file(url):
        return sa.create_engine(url)  # in memory: SQLAlchemy's own pool keeps the one database
    if not is_sqlite_file(url):
        connect_args = {"connect_timeout": CONNECT_TIMEOUT_S} if parsed.get_backend_name() == "postgresql" else {}
        return sa.create_engine(
            url,
            pool_size=_env_int("SQL_POOL_SIZE", DEFAULT_POOL_SIZE),
            max_overflow=_env_int("SQL_MAX_OVERFLOW", DEFAULT_MAX_OVERFLOW),
            pool_pre_ping=True,
            pool_recycle=RECYCLE_S,
            connect_args=connect_args,
        )
    engine = sa.create_engine(
        url,
        poolclass=QueuePool,
        pool_size=SQLITE_POOL_SIZE,
        max_overflow=SQLITE_POOL_SIZE,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
    )
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def engine_for(url: Union[str, URL]) -> Engine:
    """This process's engine for ``url`` (made on first use, then shared by every store).

    Args:
        url: an SQLAlchemy URL, e.g. ``sqlite:///var/tracker.db`` or ``postgresql://...``.

    Returns:
        The engine.
    """
    text = url if isinstance(url, str) else url.render_as_string(hide_password=False)
    return _engine(text)


def db_now(engine: Engine) -> Any:
    """The database's clock in seconds since 1970, as an SQL expression.

    Several machines share one lock table; their own clocks may differ, the database's does not.
    """
    if engine.dialect.name == "postgresql":
        return sa.literal_column("extract(epoch from clock_timestamp())", sa.Float)
    if engine.dialect.name == "sqlite":
        return sa.literal_column("((julianday('now') - 2440587.5) * 86400.0)", sa.Float)
    return sa.literal(time.time(), sa.Float)  # pragma: no cover - other databases: this process's clock


def is_transient(error: BaseException) -> bool:
    """Whether a database error may go away by itself (a restart, a dropped connection, a busy file)."""
    if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, (sa.exc.OperationalError, sa.exc.InterfaceError))


def retry_seconds() -> float:
    """How long statements are tried again while the database is unreachable (``DB_RETRY_SECONDS``)."""
    try:
        return max(0.0, float(os.environ.get("DB_RETRY_SECONDS", DEFAULT_RETRY_SECONDS)))
    except ValueError:
        return DEFAULT_RETRY_SECONDS


async def with_retries(work: Callable[[], T], what: str) -> T:
    """Runs ``work`` (blocking database calls), again after a pause while the error is transient.

    Args:
        work: the statements to run, in their own transaction (run again from the start).
        what: a few words for the log (never a conversation's content).

    Returns:
        What ``work`` returns.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the error, if it is not transient or lasts longer than
            ``retry_seconds()``.
    """
    deadline = time.monotonic() + retry_seconds()
    pause = RETRY_FIRST_PAUSE_S
    tries = 1
    while True:
        try:
            result = work()
        except sa.exc.SQLAlchemyError as error:
            if not is_transient(error) or time.monotonic() + pause > deadline:
                raise
            if tries == 1:
                logger.warning(f"The database is unreachable ({what}: {type(error).__name__}); trying again")
            await asyncio.sleep(pause)
            pause = min(pause * 2, RETRY_MAX_PAUSE_S)
            tries += 1
            continue
        if tries > 1:
            logger.warning(f"The database answered again ({what}) after {tries} tries")
        return result
