"""Conversation locks, so that Rasa handles one message of a conversation at a time.

Whenever the conversations are shared (several Rasa server processes, several replicas on one
database, or ``LOCK_STORE=sql``), the locks are shared too, in the tracker database, table
``conversation_locks`` (``SQLLockStore``). Only one process on a local SQLite file keeps them in
memory. ``bot/server/workers.py`` decides; ``endpoints.yml`` names ``EnvLockStore``::

    lock_store:
      type: bot.storage.lock_store.EnvLockStore
      url: ${TRACKER_DB_URL}

A ticket is a row: the database numbers it (an autoincrement key, atomic in SQLite and
PostgreSQL), and a message goes ahead when its row is the oldest live one of its conversation.
Rasa's own ``LockStore.issue_ticket`` reads the lock, adds a ticket and writes it back, so two
processes can draw the same ticket; its ``RedisLockStore`` does the same (measured: duplicate
tickets across two processes), which is why Redis is not offered.

**Leases, so a crash stalls nobody for long.** Each row carries its process (``owner``) and
lives ``LEASE_S`` seconds (by the database's clock, the same for every machine); a thread in each
process renews the leases of all its rows every ``RENEW_EVERY_S``. A process killed with -9, or a
machine that is gone, stops renewing: its rows stop blocking within ``LEASE_S`` seconds, and the
next message of the conversation goes ahead. A live process keeps a ticket at most Rasa's lock
lifetime (60 s, the row's ``deadline``), as Rasa's stores do. Each new ticket clears its
conversation's expired rows; the renewal thread clears any left behind now and then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
import uuid
from collections import deque
from typing import Any, AsyncIterator, Dict, Optional, Set, Text, Tuple

import sqlalchemy as sa
from rasa.core.lock import Ticket, TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, InMemoryLockStore, LockError, LockStore

from bot.server.workers import SQL, lock_backend
from bot.privacy.erase import LOCKS_TABLE
from bot.storage.engine import db_now, engine_for, with_retries

logger = logging.getLogger(__name__)

LOCK_TABLE = LOCKS_TABLE  # named once, in the Rasa-free bot/privacy/erase.py that purges it
# A ticket's lease (seconds): how long a dead holder can still block its conversation.
LEASE_S = 3.0
# How often a live process renews the leases of its tickets (seconds; more often for short leases).
RENEW_EVERY_S = 0.75
# Expired rows older than this are cleared by the renewal thread (seconds).
SWEEP_AFTER_S = 60.0
# How often a message waiting behind another of the same conversation looks again (seconds):
# from POLL_S, doubling up to POLL_MAX_S.
POLL_S = 0.02
POLL_MAX_S = 0.2

_METADATA = sa.MetaData()
LOCKS = sa.Table(
    LOCK_TABLE,
    _METADATA,
    sa.Column("ticket", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("conversation_id", sa.String(255), nullable=False),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
    sa.Column("deadline", sa.Float, nullable=False),
    sqlite_autoincrement=True,  # made by bot/storage/migrations; kept here to build statements
)

# PostgreSQL: draw tickets of one conversation one transaction at a time, so that ticket order is
# commit order (a sequence hands out numbers before commit). SQLite's single writer does this.
_SERIALISE_POSTGRESQL = sa.text("SELECT pg_advisory_xact_lock(hashtext(:conversation))")


class _Statements:
    """The statements of every message, built once per database (the clock is the database's)."""

    def __init__(self, now: Any) -> None:
        conversation = sa.bindparam("conversation")
        self.clear_expired = LOCKS.delete().where(LOCKS.c.conversation_id == conversation, LOCKS.c.expires < now)
        self.issue = LOCKS.insert().values(
            conversation_id=conversation,
            owner=sa.bindparam("owner"),
            expires=now + sa.bindparam("lease", type_=sa.Float),
            deadline=now + sa.bindparam("lifetime", type_=sa.Float),
        )
        self.first = sa.select(sa.func.min(LOCKS.c.ticket)).where(
            LOCKS.c.conversation_id == conversation, LOCKS.c.expires >= now
        )
        # Only this ticket's own row: never another's, even if a database reused the number.
        self.release = LOCKS.delete().where(
            LOCKS.c.ticket == sa.bindparam("ticket"),
            LOCKS.c.conversation_id == conversation,
            LOCKS.c.owner == sa.bindparam("owner"),
        )
        renewed = now + sa.bindparam("lease", type_=sa.Float)
        self.renew = (
            LOCKS.update()
            .where(LOCKS.c.owner == sa.bindparam("holder"), LOCKS.c.deadline > now)
            .values(expires=sa.case((renewed > LOCKS.c.deadline, LOCKS.c.deadline), else_=renewed))
        )
        self.sweep = LOCKS.delete().where(LOCKS.c.expires < now - sa.bindparam("age", type_=sa.Float))


class _LeaseKeeper(threading.Thread):
    """Renews this process's leases while it holds or waits for a ticket (a daemon thread)."""

    def __init__(self, store: "SQLLockStore") -> None:
        super().__init__(name="lock-leases", daemon=True)
        self.store = store
        self.wake = threading.Event()
        self.failures = 0

    def run(self) -> None:
        last_sweep = 0.0
        every = min(RENEW_EVERY_S, self.store.lease_s / 4)
        while True:
            self.wake.wait(every)
            self.wake.clear()
            if self.store.pid != os.getpid():
                return  # a forked copy: the new process starts its own
            try:
                if self.store.held():
                    self.store.run(self.store.statements.renew, holder=self.store.owner, lease=self.store.lease_s)
                if time.monotonic() - last_sweep > SWEEP_AFTER_S:
                    self.store.run(self.store.statements.sweep, age=SWEEP_AFTER_S)
                    last_sweep = time.monotonic()
                if self.failures:
                    logger.warning("Conversation lock leases renewed again")
                self.failures = 0
            except sa.exc.SQLAlchemyError as error:
                self.failures += 1
                if self.failures == 1:
                    logger.warning(f"Could not renew conversation lock leases: {type(error).__name__}")


class SQLLockStore(LockStore):
    """Conversation locks shared by every process that uses the same database, with leases."""

    def __init__(self, url: Text, lease_s: float = LEASE_S) -> None:
        """Connects to the database (its tables are made by ``make migrate``).

        Args:
            url: an SQLAlchemy URL, usually the tracker store's (``TRACKER_DB_URL``).
            lease_s: how long a ticket blocks its conversation after its process stops renewing it.
        """
        self.engine = engine_for(url)
        self.statements = _Statements(db_now(self.engine))
        self.lease_s = lease_s
        self.pid = os.getpid()
        self.owner = f"{uuid.uuid4().hex[:16]}-{self.pid}"
        self._tickets: Set[int] = set()
        self._tickets_guard = threading.Lock()
        self._keeper: Optional[_LeaseKeeper] = None
        super().__init__()

    def _ensure_keeper(self) -> None:
        """Starts the lease thread in this process (again after a fork, with a new owner name)."""
        if self.pid != os.getpid():
            self.pid = os.getpid()
            self.owner = f"{uuid.uuid4().hex[:16]}-{self.pid}"
            self._tickets = set()
            self._keeper = None
        if self._keeper is None or not self._keeper.is_alive():
            self._keeper = _LeaseKeeper(self)
            self._keeper.start()

    def held(self) -> bool:
        """Whether this process holds or waits for any ticket now."""
        with self._tickets_guard:
            return bool(self._tickets)

    def run(self, statement: Any, **parameters: Any) -> None:
        """Runs one statement in its own transaction."""
        with self.engine.begin() as connection:
            connection.execute(statement, parameters)

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
            lock_lifetime: seconds after which a live holder's ticket no longer blocks others.
            wait_time_in_seconds: the longest pause between two looks (at most ``POLL_MAX_S`` here).

        Raises:
            LockError: the database stayed unreachable (``DB_RETRY_SECONDS``), or the earlier
                messages held the lock for longer than ``lock_lifetime``.
        """
        self._ensure_keeper()
        ticket, first = await self._issue_ticket(conversation_id, lock_lifetime)
        try:
            deadline = time.monotonic() + lock_lifetime
            pause = min(wait_time_in_seconds, POLL_S)
            while not first:
                if time.monotonic() > deadline:
                    raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}'.")
                await asyncio.sleep(pause)
                pause = min(pause * 2, wait_time_in_seconds, POLL_MAX_S)
                first = await self._is_first(conversation_id, ticket)
            yield TicketLock(conversation_id, deque([Ticket(ticket, time.time() + self.lease_s)]))
        finally:
            with self._tickets_guard:
                self._tickets.discard(ticket)
            try:
                await with_retries(
                    lambda: self.run(
                        self.statements.release, ticket=ticket, conversation=conversation_id, owner=self.owner
                    ),
                    "releasing a conversation lock",
                )
            except sa.exc.SQLAlchemyError as error:  # its lease runs out on its own
                logger.warning(f"Could not release the lock of a conversation: {type(error).__name__}")

    async def _issue_ticket(self, conversation_id: Text, lock_lifetime: float) -> Tuple[int, bool]:
        """Draws a ticket; returns it, and whether it is first in line already."""
        parameters: Dict[str, Any] = {
            "conversation": conversation_id,
            "owner": self.owner,
            "lease": min(self.lease_s, lock_lifetime),
            "lifetime": lock_lifetime,
        }

        def issue() -> Tuple[int, bool]:
            with self.engine.begin() as connection:
                if self.engine.dialect.name == "postgresql":
                    connection.execute(_SERIALISE_POSTGRESQL, parameters)
                connection.execute(self.statements.clear_expired, parameters)
                result = connection.execute(self.statements.issue, parameters)
                ticket = int(result.inserted_primary_key[0])
                with self._tickets_guard:
                    self._tickets.add(ticket)
                first = connection.execute(self.statements.first, parameters).scalar()
            return ticket, first is None or int(first) >= ticket

        try:
            return await with_retries(issue, "drawing a conversation lock ticket")
        except sa.exc.SQLAlchemyError as error:
            raise LockError(f"Error while acquiring lock: {type(error).__name__}") from error

    async def _is_first(self, conversation_id: Text, ticket: int) -> bool:
        """Whether no live ticket of the conversation is older than ``ticket``."""

        def look() -> bool:
            with self.engine.connect() as connection:
                first = connection.execute(self.statements.first, {"conversation": conversation_id}).scalar()
            return first is None or int(first) >= ticket

        try:
            return await with_retries(look, "waiting for a conversation lock")
        except sa.exc.SQLAlchemyError as error:
            raise LockError(f"Error while acquiring lock: {type(error).__name__}") from error

    # Rasa's LockStore interface, for anything that reads or writes a lock as a whole.

    def get_lock(self, conversation_id: Text) -> Optional[TicketLock]:
        """The conversation's lock with its live tickets, or None if it has none."""
        now = db_now(self.engine)
        query = (
            sa.select(LOCKS.c.ticket, LOCKS.c.expires)
            .where(LOCKS.c.conversation_id == conversation_id, LOCKS.c.expires >= now)
            .order_by(LOCKS.c.ticket)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        if not rows:
            return None
        return TicketLock(conversation_id, deque(Ticket(int(number), float(expires)) for number, expires in rows))

    def delete_lock(self, conversation_id: Text) -> None:
        """Removes every ticket of the conversation."""
        self.run(LOCKS.delete().where(LOCKS.c.conversation_id == conversation_id))

    def save_lock(self, lock: TicketLock) -> None:
        """Makes the stored tickets of the conversation those of ``lock`` (owned by this process)."""
        with self.engine.begin() as connection:
            connection.execute(LOCKS.delete().where(LOCKS.c.conversation_id == lock.conversation_id))
            for ticket in lock.tickets:
                connection.execute(
                    LOCKS.insert().values(
                        ticket=ticket.number,
                        conversation_id=lock.conversation_id,
                        owner=self.owner,
                        expires=ticket.expires,
                        deadline=ticket.expires,
                    )
                )


class EnvLockStore(LockStore):
    """Picks where the locks live from the environment (see ``bot/server/workers.py``)."""

    def __init__(self, endpoint_config: Any = None) -> None:
        """Chooses the store: in the tracker database, or in memory for one process on a local file.

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
        self.inner: LockStore
        if lock_backend(environ) == SQL:
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
