"""Conversation locks, so that Rasa handles one message of a conversation at a time.

With one Rasa server process the locks live in its memory. Several processes (``SANIC_WORKERS``,
by default one per CPU, see ``bot/server/workers.py``) must share them: in Redis when
``REDIS_URL`` is set, else in the tracker database, in the table ``conversation_locks``
(``SQLLockStore``). ``endpoints.yml`` names ``EnvLockStore``, which picks one of the three::

    lock_store:
      type: bot.storage.lock_store.EnvLockStore
      url: ${TRACKER_DB_URL}

Why not Rasa's ticket logic on a table: Rasa's ``LockStore.issue_ticket`` reads the lock, adds a
ticket and writes it back, so two processes can draw the same ticket. Here a ticket is a row:
the database numbers it (an autoincrement key, atomic in SQLite and PostgreSQL), and a message
goes ahead when its row is the oldest unexpired one of its conversation. Rows expire after
Rasa's lock lifetime (``TICKET_LOCK_LIFETIME``, 60 s), so a crashed process blocks nobody for
long, and each new ticket clears the expired rows of its conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from typing import Any, AsyncIterator, Optional, Text

import sqlalchemy as sa
from rasa.core.lock import Ticket, TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, InMemoryLockStore, LockError, LockStore, RedisLockStore

from bot.server.workers import REDIS, SQL, lock_backend, redis_settings
from bot.storage.engine import create_tables, engine_for

logger = logging.getLogger(__name__)

LOCK_TABLE = "conversation_locks"
# How often a message waiting behind another of the same conversation looks again (seconds).
POLL_S = 0.02

_METADATA = sa.MetaData()
LOCKS = sa.Table(
    LOCK_TABLE,
    _METADATA,
    sa.Column("ticket", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("conversation_id", sa.String(255), nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
    sa.Index(f"ix_{LOCK_TABLE}_conversation", "conversation_id", "ticket"),
    sqlite_autoincrement=True,  # never hand out a number again, even the latest one's
)


# The statements of every message, built once (SQLAlchemy then reuses their compiled form).
_CLEAR_EXPIRED = LOCKS.delete().where(
    LOCKS.c.conversation_id == sa.bindparam("conversation"), LOCKS.c.expires < sa.bindparam("now")
)
_ISSUE = LOCKS.insert().values(conversation_id=sa.bindparam("conversation"), expires=sa.bindparam("expires"))
_FIRST = sa.select(sa.func.min(LOCKS.c.ticket)).where(
    LOCKS.c.conversation_id == sa.bindparam("conversation"), LOCKS.c.expires >= sa.bindparam("now")
)
# Only this ticket's own row: never another's, even if a database reused the number.
_RELEASE = LOCKS.delete().where(
    LOCKS.c.ticket == sa.bindparam("ticket"),
    LOCKS.c.conversation_id == sa.bindparam("conversation"),
    LOCKS.c.expires == sa.bindparam("expires"),
)
# PostgreSQL: draw tickets of one conversation one transaction at a time, so that ticket order is
# commit order (a sequence hands out numbers before commit). SQLite's single writer does this.
_SERIALISE_POSTGRESQL = sa.text("SELECT pg_advisory_xact_lock(hashtext(:conversation))")
# How long a waiting message pauses between looks: from POLL_S, doubling up to POLL_MAX_S.
POLL_MAX_S = 0.2


class SQLLockStore(LockStore):
    """Conversation locks shared by every process that uses the same database."""

    def __init__(self, url: Text) -> None:
        """Connects to the database and creates the table if it is missing.

        Args:
            url: an SQLAlchemy URL, usually the tracker store's (``TRACKER_DB_URL``).
        """
        self.engine = engine_for(url)
        create_tables(self.engine, _METADATA)
        super().__init__()

    @contextlib.asynccontextmanager
    async def lock(
        self,
        conversation_id: Text,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = 1,
    ) -> AsyncIterator[TicketLock]:
        """Waits until every earlier message of the conversation is done, then holds the lock.

        Args:
            conversation_id: the conversation.
            lock_lifetime: seconds after which the ticket no longer blocks others.
            wait_time_in_seconds: the longest pause between two looks (at most ``POLL_MAX_S`` here).

        Raises:
            LockError: the database failed, or the earlier messages held the lock for longer
                than ``lock_lifetime``.
        """
        ticket, expires, first = self._issue_ticket(conversation_id, lock_lifetime)
        try:
            deadline = time.monotonic() + lock_lifetime
            pause = min(wait_time_in_seconds, POLL_S)
            while not first:
                if time.monotonic() > deadline:
                    raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}'.")
                await asyncio.sleep(pause)
                pause = min(pause * 2, wait_time_in_seconds, POLL_MAX_S)
                first = self._is_first(conversation_id, ticket)
            yield TicketLock(conversation_id, deque([Ticket(ticket, expires)]))
        finally:
            try:
                self._run(_RELEASE, ticket=ticket, conversation=conversation_id, expires=expires)
            except sa.exc.SQLAlchemyError as error:  # the ticket expires on its own
                logger.warning(f"Could not release the lock of a conversation: {type(error).__name__}")

    def _issue_ticket(self, conversation_id: Text, lock_lifetime: float) -> "tuple[int, float, bool]":
        """Draws a ticket; returns it, when it expires, and whether it is first in line already."""
        now = time.time()
        expires = now + lock_lifetime
        try:
            with self.engine.begin() as connection:
                if self.engine.dialect.name == "postgresql":
                    connection.execute(_SERIALISE_POSTGRESQL, {"conversation": conversation_id})
                connection.execute(_CLEAR_EXPIRED, {"conversation": conversation_id, "now": now})
                result = connection.execute(_ISSUE, {"conversation": conversation_id, "expires": expires})
                ticket = int(result.inserted_primary_key[0])
                first = connection.execute(_FIRST, {"conversation": conversation_id, "now": now}).scalar()
        except sa.exc.SQLAlchemyError as error:
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error
        return ticket, expires, first is None or int(first) >= ticket

    def _is_first(self, conversation_id: Text, ticket: int) -> bool:
        """Whether no unexpired ticket of the conversation is older than ``ticket``."""
        try:
            with self.engine.connect() as connection:
                first = connection.execute(_FIRST, {"conversation": conversation_id, "now": time.time()}).scalar()
        except sa.exc.SQLAlchemyError as error:
            raise LockError(f"Error while acquiring lock. Error:\n{error}") from error
        return first is None or int(first) >= ticket

    def _run(self, statement: Any, **parameters: Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(statement, parameters)

    # Rasa's LockStore interface, for anything that reads or writes a lock as a whole.

    def get_lock(self, conversation_id: Text) -> Optional[TicketLock]:
        """The conversation's lock with its unexpired tickets, or None if it has none."""
        query = (
            sa.select(LOCKS.c.ticket, LOCKS.c.expires)
            .where(LOCKS.c.conversation_id == conversation_id, LOCKS.c.expires >= time.time())
            .order_by(LOCKS.c.ticket)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        if not rows:
            return None
        return TicketLock(conversation_id, deque(Ticket(int(number), float(expires)) for number, expires in rows))

    def delete_lock(self, conversation_id: Text) -> None:
        """Removes every ticket of the conversation."""
        self._run(LOCKS.delete().where(LOCKS.c.conversation_id == conversation_id))

    def save_lock(self, lock: TicketLock) -> None:
        """Makes the stored tickets of the conversation those of ``lock``."""
        with self.engine.begin() as connection:
            connection.execute(LOCKS.delete().where(LOCKS.c.conversation_id == lock.conversation_id))
            for ticket in lock.tickets:
                connection.execute(
                    LOCKS.insert().values(
                        ticket=ticket.number, conversation_id=lock.conversation_id, expires=ticket.expires
                    )
                )


class EnvLockStore(LockStore):
    """Picks where the locks live from the environment (see ``bot/server/workers.py``)."""

    def __init__(self, endpoint_config: Any = None) -> None:
        """Chooses the store: in memory, in Redis or in the tracker database.

        Args:
            endpoint_config: the ``lock_store`` section of ``endpoints.yml``; its ``url`` is the
                database for ``SQLLockStore`` (``TRACKER_DB_URL`` if it has none).

        Raises:
            LockStoreSettingsError: see ``bot.server.workers.lock_backend``.
        """
        environ = dict(os.environ)
        url = getattr(endpoint_config, "url", None) or environ.get("TRACKER_DB_URL", "")
        if url:
            environ["TRACKER_DB_URL"] = url
        backend = lock_backend(environ)
        self.inner: LockStore
        if backend == REDIS:
            self.inner = RedisLockStore(**(redis_settings(environ) or {}))
        elif backend == SQL:
            self.inner = SQLLockStore(url)
        else:
            self.inner = InMemoryLockStore()
        logger.debug(f"Conversation locks: {type(self.inner).__name__}")
        super().__init__()

    def lock(
        self,
        conversation_id: Text,
        lock_lifetime: float = LOCK_LIFETIME,
        wait_time_in_seconds: float = 1,
    ) -> Any:
        """The chosen store's lock for the conversation (an async context manager)."""
        return self.inner.lock(conversation_id, lock_lifetime, wait_time_in_seconds)

    def get_lock(self, conversation_id: Text) -> Optional[TicketLock]:
        """Returns the conversation's lock, if there is one."""
        return self.inner.get_lock(conversation_id)

    def delete_lock(self, conversation_id: Text) -> None:
        """Deletes the conversation's lock."""
        self.inner.delete_lock(conversation_id)

    def save_lock(self, lock: TicketLock) -> None:
        """Stores the lock."""
        self.inner.save_lock(lock)
