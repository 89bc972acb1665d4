"""The local store of the imported directory: one JSON file, replaced atomically, reloaded live.

The importer writes a new file beside the old one and renames it into place (``os.replace``), so a
reader sees either the whole old store or the whole new one, never half of either. The action server
holds the store in memory and checks the file at most once a second: a new import shows in the next
answers without a restart. With no store file the assistant answers as it did before any import.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional, Tuple

from pydantic import ValidationError

from bot.directory.model import Directory, describe_errors

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SERVICES_FILE = ROOT / "var" / "services.json"
SERVICES_FILE_ENV = "SERVICES_FILE"


class DirectoryError(Exception):
    """The store file cannot be read, is not JSON, or does not fit the store's model."""


def services_path() -> Path:
    """The store file in use: ``$SERVICES_FILE`` or ``var/services.json``."""
    configured = os.environ.get(SERVICES_FILE_ENV)
    return Path(configured) if configured else DEFAULT_SERVICES_FILE


def read_directory(path: Path) -> Directory:
    """Reads and checks a store file.

    Raises:
        DirectoryError: naming the file and what is wrong with it.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DirectoryError(f"{path}: cannot read the services store ({error.strerror})") from error
    except ValueError as error:
        raise DirectoryError(f"{path}: the services store is not JSON ({error})") from error
    try:
        return Directory.parse_obj(raw)
    except ValidationError as error:
        raise DirectoryError(f"{path}: the services store does not fit its model: {describe_errors(error)}") from error


def write_directory(path: Path, directory: Directory) -> None:
    """Writes the store: a new file in the same folder, flushed to disk, then renamed over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(directory.json(ensure_ascii=False, indent=1))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)  # public directory data, read by the action server
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class DirectoryStore:
    """Holds the store in memory and reloads it when the file changes (at most one check a second).

    A store that becomes unreadable keeps the last good copy in use (and logs why); a store that is
    removed means "no import": the assistant goes back to its answers without a directory.
    """

    def __init__(self, path: Path, check_every: float = 1.0) -> None:
        """Creates the holder; nothing is read until the first ``get``."""
        self.path = path
        self.check_every = check_every
        self._directory: Optional[Directory] = None
        self._stamp: Optional[Tuple[float, int, int]] = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def get(self, now: Optional[float] = None) -> Optional[Directory]:
        """The current directory, or None when there is no (good) store file."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if now - self._checked_at < self.check_every:
                return self._directory
            self._checked_at = now
            try:
                stat = self.path.stat()
            except FileNotFoundError:
                self._directory, self._stamp = None, None
                return None
            except OSError as error:
                logger.error("Services store %s cannot be read (%s); keeping the copy in memory.", self.path, error)
                return self._directory
            stamp = (stat.st_mtime, stat.st_size, stat.st_ino)
            if stamp != self._stamp:
                try:
                    self._directory = read_directory(self.path)
                    logger.info("Loaded %d services from %s.", len(self._directory.services), self.path)
                except DirectoryError as error:
                    logger.error("%s. Keeping the copy in memory.", error)
                self._stamp = stamp
            return self._directory


_default: Optional[DirectoryStore] = None


def get_directory() -> Optional[Directory]:
    """The imported directory (reloaded when the store changes), or None when nothing was imported."""
    global _default
    path = services_path()
    if _default is None or _default.path != path:
        _default = DirectoryStore(path)
    return _default.get()
