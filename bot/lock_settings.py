"""Where the conversation locks live, read from ``REDIS_URL`` and ``SANIC_WORKERS`` (no Rasa import).

Used by ``bot/lock_store.py`` (in the Rasa server) and ``bot/serve.py`` (which refuses a bad
setting before starting anything).
"""

from __future__ import annotations

import urllib.parse
from typing import Any, Dict, Mapping, Optional

REDIS_DEFAULT_PORT = 6379
REDIS_DEFAULT_DB = 1
KEY_PREFIX = "lancs"


class LockStoreSettingsError(ValueError):
    """``REDIS_URL`` or ``SANIC_WORKERS`` cannot be used; the message says which and why."""


def redis_settings(environ: Mapping[str, str]) -> Optional[Dict[str, Any]]:
    """Reads ``REDIS_URL`` and checks ``SANIC_WORKERS`` against it.

    Args:
        environ: the environment.

    Returns:
        ``RedisLockStore`` arguments, or None when ``REDIS_URL`` is not set (locks in memory).

    Raises:
        LockStoreSettingsError: ``REDIS_URL`` is not a ``redis://`` URL, or ``SANIC_WORKERS``
            asks for more than one process without it.
    """
    url = environ.get("REDIS_URL", "").strip()
    workers = environ.get("SANIC_WORKERS", "1").strip() or "1"
    if not url:
        if workers != "1":
            raise LockStoreSettingsError(
                f"SANIC_WORKERS={workers} needs REDIS_URL: the server processes must share their "
                "conversation locks. Set REDIS_URL=redis://host:port/db, or unset SANIC_WORKERS."
            )
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
