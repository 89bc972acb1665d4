"""How many Rasa server processes run, and where their conversation locks live (no Rasa import).

Used by ``bot/storage/lock_store.py`` (in the Rasa server) and ``bot/server/serve.py`` (which fills in the
default and refuses a bad setting before starting anything).

- ``SANIC_WORKERS``: the number of Rasa server processes. ``bot/server/serve.py`` sets it, when unset,
  to the number of CPUs this process may use, at most ``MAX_DEFAULT_WORKERS``.
- The conversation locks live in the tracker database (``TRACKER_DB_URL``, table
  ``conversation_locks``) whenever conversations are shared: several processes, a database
  server such as PostgreSQL (several replicas), or ``LOCK_STORE=sql``. Only one process on a
  local SQLite file keeps them in its memory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional

MAX_DEFAULT_WORKERS = 4

MEMORY = "memory"
SQL = "sql"


class LockStoreSettingsError(ValueError):
    """``SANIC_WORKERS``, ``LOCK_STORE`` or ``TRACKER_DB_URL`` cannot be used; the message says which and why."""


def default_workers(cgroup_cpu_max: str = "/sys/fs/cgroup/cpu.max") -> int:
    """One Rasa server process per CPU this process may use, at most ``MAX_DEFAULT_WORKERS``.

    The CPUs it may use: those it may run on, or fewer if a container's CPU quota (cgroup v2
    ``cpu.max``, e.g. ``"150000 100000"`` for 1.5 CPUs) says so, rounded up.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path(cgroup_cpu_max).read_text(encoding="ascii").split()[:2]
        if quota != "max" and int(period) > 0:
            cpus = min(cpus, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota: the CPUs above
    return max(1, min(cpus, MAX_DEFAULT_WORKERS))


def workers_to_start(environ: Mapping[str, str]) -> str:
    """The ``SANIC_WORKERS`` value ``make run`` starts with: the one set, else ``default_workers()``."""
    return environ.get("SANIC_WORKERS", "").strip() or str(default_workers())


def workers(environ: Mapping[str, str]) -> int:
    """The number of Rasa server processes asked for (1 when ``SANIC_WORKERS`` is unset).

    Raises:
        LockStoreSettingsError: ``SANIC_WORKERS`` is not a whole number of at least 1.
    """
    value = environ.get("SANIC_WORKERS", "").strip() or "1"
    if not value.isdigit() or int(value) < 1:
        raise LockStoreSettingsError(f"SANIC_WORKERS must be a whole number of at least 1, not {value!r}")
    return int(value)


def server_processes(environ: Optional[Mapping[str, str]] = None) -> int:
    """How many Rasa server processes run, for code inside them (1 if the setting is bad).

    Args:
        environ: the environment (default: this process's).
    """
    try:
        return workers(os.environ if environ is None else environ)
    except LockStoreSettingsError:  # bot/server/serve.py refuses it before Rasa starts
        return 1


def is_local_file_database(url: str) -> bool:
    """Whether ``url`` is a SQLite file on this machine, which only this machine's processes share."""
    import sqlalchemy as sa

    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return False
    database = parsed.database or ""
    return parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:") and "mode=memory" not in database


def lock_backend(environ: Mapping[str, str]) -> str:
    """Where the conversation locks live: ``SQL`` (the tracker database) or ``MEMORY``.

    The locks are shared whenever the conversations may be: several processes, a database other
    than a local SQLite file (a PostgreSQL server is there for several replicas), or
    ``LOCK_STORE=sql``. Only one process on a local SQLite file keeps them in memory.

    Raises:
        LockStoreSettingsError: a setting is malformed or cannot work (``REDIS_URL``, which is
            not supported; ``LOCK_STORE=memory`` with shared conversations; several processes
            without ``TRACKER_DB_URL``).
    """
    if environ.get("REDIS_URL", "").strip():
        raise LockStoreSettingsError(
            "REDIS_URL is no longer supported (Rasa's Redis lock store can hand two processes the same "
            "ticket): the conversation locks live in the tracker database. Unset REDIS_URL."
        )
    chosen = environ.get("LOCK_STORE", "").strip().lower()
    if chosen not in ("", MEMORY, SQL):
        raise LockStoreSettingsError(f"LOCK_STORE must be 'sql' or 'memory', not {chosen!r}")
    url = environ.get("TRACKER_DB_URL", "").strip()
    shared = workers(environ) > 1 or (bool(url) and not is_local_file_database(url))
    if chosen == MEMORY and shared:
        raise LockStoreSettingsError(
            "LOCK_STORE=memory cannot work here: the conversations are shared (several processes, or a "
            "database server), so their locks must be too. Unset LOCK_STORE."
        )
    if chosen == SQL or shared:
        if not url:
            raise LockStoreSettingsError(
                f"SANIC_WORKERS={workers(environ)} needs somewhere to share the conversation locks: "
                "set TRACKER_DB_URL, or SANIC_WORKERS=1."
            )
        return SQL
    return MEMORY
