"""Deleting stored conversations: one on request, or all that are older than the retention limit.

The tables are named here with plain SQLAlchemy (no Rasa import), so both the Rasa server (the
tracker store, the widget's quick exit) and ``make purge`` use the same statements:

- ``events``: Rasa's tracker store, every event of every conversation (``sender_id``).
- ``tracker_checkpoints``: slot values at the end of turns (bot/storage/tracker_store.py).
- ``conversation_locks``: one row per message waiting or being answered (bot/storage/lock_store.py);
  rows only name a conversation and expire within a minute, and expired rows are purged.

On SQLite, deletions run with ``PRAGMA secure_delete`` (the freed pages are overwritten with
zeros, so deleted words do not linger in the file) and end with a WAL checkpoint that truncates
the write-ahead log, where old copies of the pages would otherwise stay until it is reused.
PostgreSQL frees deleted rows at its next (auto)vacuum.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import List, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

logger = logging.getLogger(__name__)

# The action whose turn ends with the whole conversation deleted (actions/privacy.py sends the
# confirmation; the tracker store deletes instead of storing that turn).
FORGET_ACTION = "action_forget_conversation"

EVENTS_TABLE = "events"
CHECKPOINTS_TABLE = "tracker_checkpoints"
LOCKS_TABLE = "conversation_locks"

_metadata = sa.MetaData()
EVENTS = sa.Table(
    EVENTS_TABLE,
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255)),
    sa.Column("timestamp", sa.Float),
)
CHECKPOINTS = sa.Table(
    CHECKPOINTS_TABLE,
    _metadata,
    sa.Column("event_id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255)),
)
LOCKS = sa.Table(
    LOCKS_TABLE,
    _metadata,
    sa.Column("ticket", sa.Integer, primary_key=True),
    sa.Column("conversation_id", sa.String(255)),
    sa.Column("expires", sa.Float),
)


def existing_tables(connection: Connection) -> set:
    """The names of the tables that exist in the connection's database."""
    return set(sa.inspect(connection).get_table_names())


def secure_delete_on(connection: Connection) -> None:
    """On SQLite, makes this connection overwrite what it deletes (no effect elsewhere)."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("PRAGMA secure_delete = ON")


def truncate_wal(engine: Engine) -> None:
    """On SQLite in WAL mode, copies the log into the file and empties it (best effort)."""
    if engine.dialect.name != "sqlite":
        return
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    except sa.exc.SQLAlchemyError as error:  # a busy reader: the next checkpoint does it
        logger.debug("WAL checkpoint skipped (%s).", type(error).__name__)


def delete_conversation_rows(connection: Connection, sender_id: str) -> int:
    """Deletes every stored event and checkpoint of one conversation. Returns how many events went.

    Lock rows are left alone: the caller may hold the conversation's lock (they hold no text).

    Args:
        connection: a connection inside a transaction.
        sender_id: the conversation's id in the tracker store.
    """
    secure_delete_on(connection)
    tables = existing_tables(connection)
    deleted = 0
    if EVENTS_TABLE in tables:
        deleted = connection.execute(EVENTS.delete().where(EVENTS.c.sender_id == sender_id)).rowcount or 0
    if CHECKPOINTS_TABLE in tables:
        connection.execute(CHECKPOINTS.delete().where(CHECKPOINTS.c.sender_id == sender_id))
    return int(deleted)


def delete_conversation(engine: Engine, sender_id: str) -> int:
    """Deletes one conversation in its own transaction. Returns how many events went."""
    with engine.begin() as connection:
        deleted = delete_conversation_rows(connection, sender_id)
    truncate_wal(engine)
    return deleted


def delete_older_than(engine: Engine, cutoff: float, now: Optional[float] = None) -> dict:
    """Deletes events older than ``cutoff``, checkpoints left without their event, and expired locks.

    Args:
        engine: the tracker database.
        cutoff: a time in seconds since 1970; older events are deleted.
        now: the current time (expired locks are those that expired before it).

    Returns:
        How many rows went from each table.
    """
    counts = {EVENTS_TABLE: 0, CHECKPOINTS_TABLE: 0, LOCKS_TABLE: 0}
    with engine.begin() as connection:
        secure_delete_on(connection)
        tables = existing_tables(connection)
        if EVENTS_TABLE in tables:
            counts[EVENTS_TABLE] = connection.execute(EVENTS.delete().where(EVENTS.c.timestamp < cutoff)).rowcount or 0
        if CHECKPOINTS_TABLE in tables:
            orphan = ~sa.exists().where(EVENTS.c.id == CHECKPOINTS.c.event_id)
            if EVENTS_TABLE not in tables:
                orphan = sa.true()
            counts[CHECKPOINTS_TABLE] = connection.execute(CHECKPOINTS.delete().where(orphan)).rowcount or 0
        if LOCKS_TABLE in tables and now is not None:
            counts[LOCKS_TABLE] = connection.execute(LOCKS.delete().where(LOCKS.c.expires < now)).rowcount or 0
    truncate_wal(engine)
    return counts


def main(argv: List[str]) -> int:
    """Command line for staff: ``python -m bot.privacy.erase CONVERSATION_ID...`` (``make forget ID=...``).

    Deletes the named conversations from the tracker database (``TRACKER_DB_URL``, default as
    ``make run``). A widget conversation is ``widget:<id>``, a socket.io one ``socketio:<id>``, a REST
    one the sender id its server sent.
    """
    if not argv:
        print("usage: python -m bot.privacy.erase CONVERSATION_ID [CONVERSATION_ID ...]", file=sys.stderr)
        return 2
    from bot.privacy.files import private_database
    from bot.server.serve import settings

    url = settings(dict(os.environ))["TRACKER_DB_URL"]
    private_database(url)
    engine = sa.create_engine(url, pool_pre_ping=True)
    try:
        for sender_id in argv:
            print(f"{sender_id}: {delete_conversation(engine, sender_id)} events deleted")
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
