"""How many Rasa server processes run, and where their conversation locks live (no Rasa import).

Used by ``bot/storage/lock_store.py`` (in the Rasa server) and ``bot/server/serve.py`` (which fills in the
default and refuses a bad setting before starting anything).

- ``SANIC_WORKERS``: the number of Rasa server processes. ``bot/server/serve.py`` sets it, when unset,
  to the number of CPUs this process may use, at most ``MAX_DEFAULT_WORKERS``.
- One process: the locks live in its memory.
- Several processes must share their locks: in Redis when ``REDIS_URL`` is set, else in the
  tracker database (``TRACKER_DB_URL``, table ``conversation_locks``).
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

REDIS_DEFAULT_PORT = 6379
REDIS_DEFAULT_DB = 1
KEY_PREFIX = "lancs"
MAX_DEFAULT_WORKERS = 4

MEMORY = "memory"
SQL = "sql"
REDIS = "redis"


class LockStoreSettingsError(ValueError):
    """``REDIS_URL``, ``SANIC_WORKERS`` or ``TRACKER_DB_URL`` cannot be used; the message says which and why."""


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


def lock_backend(environ: Mapping[str, str]) -> str:
    """Where the locks live: ``MEMORY`` (one process), ``REDIS`` (``REDIS_URL``) or ``SQL``.

    Raises:
        LockStoreSettingsError: a setting is malformed, or several processes have neither
            ``REDIS_URL`` nor ``TRACKER_DB_URL`` to share their locks in.
    """
    if redis_settings(environ) is not None:
        return REDIS
    if workers(environ) == 1:
        return MEMORY
    if not environ.get("TRACKER_DB_URL", "").strip():
        raise LockStoreSettingsError(
            f"SANIC_WORKERS={workers(environ)} needs somewhere to share the conversation locks: "
            "set TRACKER_DB_URL (or REDIS_URL), or SANIC_WORKERS=1."
        )
    return SQL


def redis_settings(environ: Mapping[str, str]) -> Optional[Dict[str, Any]]:
    """Reads ``REDIS_URL``.

    Args:
        environ: the environment.

    Returns:
        ``RedisLockStore`` arguments, or None when ``REDIS_URL`` is not set.

    Raises:
        LockStoreSettingsError: ``REDIS_URL`` is not a ``redis://`` URL.
    """
    url = environ.get("REDIS_URL", "").strip()
    if not url:
        return None
    parts = urllib.parse.urlsplit(url)
    try:
        port: Optional[int] = parts.port or REDIS_DEFAULT_PORT
    except ValueError:
        port = None
    db = parts.path.strip("/") or str(REDIS_DEFAULT_DB)
    if parts.scheme != "redis" or not parts.hostname or port is None or not db.isdigit():
        raise LockStoreSettingsError("REDIS_URL must look like redis://host:6379/1 (with :password@ before the host)")
    return {
        "host": parts.hostname,
        "port": port,
        "db": int(db),
        "password": urllib.parse.unquote(parts.password) if parts.password else None,
        "key_prefix": KEY_PREFIX,
    }
