"""Server processes die with the process that started them, even when it is killed with -9.

Linux's ``PR_SET_PDEATHSIG`` asks the kernel to signal a process when its parent dies. It is not
inherited through ``fork``, so each generation sets its own: ``bot/server/serve.py`` for the
servers it starts, and ``bot/server/patches.py`` in each Sanic worker process of the Rasa server.
Both ask for SIGKILL: a parent that died without stopping its children has crashed, and they
cannot drain properly anyway (their output went to it). A stop that drains is SIGTERM to the
supervisor, which stops them in order.
"""

from __future__ import annotations

import ctypes
import functools
import ctypes.util
import os
import signal
from typing import Any, Optional

PR_SET_PDEATHSIG = 1


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def load() -> bool:
    """Loads the C library now, so that a forked child calls it without importing anything."""
    try:
        _libc()
    except OSError:
        return False
    return True


def die_with_parent(sig: int = signal.SIGTERM, parent: Optional[int] = None) -> bool:
    """Asks the kernel to send ``sig`` to this process when its parent dies.

    Args:
        sig: the signal.
        parent: the parent's process id, known before the fork: if this process's parent is no
            longer that one (it died before the request was made), the signal is sent at once.

    Returns:
        Whether the request was made (False off Linux).
    """
    try:
        if _libc().prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), sig)
    return True
