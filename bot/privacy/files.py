"""Database files that only their owner can read or write (mode 600).

SQLite creates a database file with the process's umask (usually 644: readable by every user of
the machine) and gives its ``-wal`` and ``-shm`` files the same mode as the database. So the file
is created here first, empty and private (an empty file is a valid SQLite database), before any
connection opens it, and an existing file with a wider mode is narrowed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Optional, Union

import sqlalchemy as sa

PRIVATE_MODE = 0o600
_COMPANIONS = ("", "-wal", "-shm", "-journal")


def private_file(path: Union[str, Path]) -> Path:
    """Creates ``path`` (mode 600) if it is missing, and narrows it and its SQLite companions to 600.

    Args:
        path: a database file.

    Returns:
        The path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE))
    except FileExistsError:
        pass
    for suffix in _COMPANIONS:
        companion = Path(f"{path}{suffix}")
        try:
            mode = stat.S_IMODE(companion.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            companion.chmod(mode & 0o700 | PRIVATE_MODE)
    return path


def sqlite_file_of(url: Union[str, sa.engine.URL]) -> Optional[Path]:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    parsed = sa.engine.make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:") or "mode=memory" in database:
        return None
    if database.startswith("file:"):
        database = database[len("file:") :].split("?", 1)[0]
    return Path(database)


def private_database(url: Union[str, sa.engine.URL]) -> None:
    """Makes the file of a SQLite URL private (see ``private_file``); other databases are left alone."""
    path = sqlite_file_of(url)
    if path is not None:
        private_file(path)
