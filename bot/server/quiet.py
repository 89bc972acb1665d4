"""Keeps library warnings out of the staff shell's terminal.

Standard library only: the action server imports it too, and its container has neither Rasa nor
aiohttp (``requirements-actions.txt``).
"""
import os
import warnings


def quiet_warnings_if_asked() -> None:
    """With ``PYTHONWARNINGS=ignore`` (the staff shell), no library warning reaches the terminal.

    Some libraries reset the warning filters while they import, so the filter alone lets their
    deprecation notes through; not showing any warning at all is what the setting asks for.
    """
    if os.environ.get("PYTHONWARNINGS") == "ignore":
        warnings.showwarning = lambda *args, **kwargs: None
