"""The conversation lock store: in memory for one server process, Redis for several.

Rasa handles one message of a conversation at a time, with a lock per conversation. With one
server process (the default) the locks live in memory. ``SANIC_WORKERS=2`` runs two processes,
which must share their locks: set ``REDIS_URL`` (``redis://[:password@]host[:port][/db]``) and
they are kept in Redis. ``endpoints.yml`` names this class and needs no setting of its own::

    lock_store:
      type: bot.lock_store.EnvLockStore
"""

from __future__ import annotations

import os
from typing import Any, Optional, Text

from rasa.core.lock import TicketLock
from rasa.core.lock_store import InMemoryLockStore, LockStore, RedisLockStore

from bot.lock_settings import redis_settings


class EnvLockStore(LockStore):
    """Keeps the locks in Redis when ``REDIS_URL`` is set, else in this process's memory."""

    def __init__(self, endpoint_config: Any = None) -> None:
        """Chooses where the locks live, from the environment.

        Args:
            endpoint_config: the ``lock_store`` section of ``endpoints.yml`` (nothing is read from it).

        Raises:
            LockStoreSettingsError: see ``bot.lock_settings.redis_settings``.
        """
        settings = redis_settings(os.environ)
        self.inner: LockStore = InMemoryLockStore() if settings is None else RedisLockStore(**settings)
        super().__init__()

    def get_lock(self, conversation_id: Text) -> Optional[TicketLock]:
        """Returns the conversation's lock, if there is one."""
        return self.inner.get_lock(conversation_id)

    def delete_lock(self, conversation_id: Text) -> None:
        """Deletes the conversation's lock."""
        self.inner.delete_lock(conversation_id)

    def save_lock(self, lock: TicketLock) -> None:
        """Stores the lock."""
        self.inner.save_lock(lock)
