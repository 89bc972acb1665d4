"""What the channels ask of the tracker store beyond Rasa's own methods: all of a conversation, and deleting it.

Rasa hands the channels its agent's tracker store wrapped (``AwaitableTrackerStore`` around
``FailSafeTrackerStore``); the methods of this project's store (``bot/storage/tracker_store.py``:
``visible_events``, ``delete_conversation``) are on the innermost one.
"""

from __future__ import annotations

from typing import Any, List

from rasa.core.tracker_store import InMemoryTrackerStore, TrackerStore
from rasa.shared.core.events import BotUttered, Event, UserUttered


class ForgetNotSupported(RuntimeError):
    """The configured tracker store cannot delete a conversation."""


def innermost(store: Any) -> Any:
    """The tracker store inside Rasa's wrappers."""
    seen = set()
    while id(store) not in seen and getattr(store, "_tracker_store", None) is not None:
        seen.add(id(store))
        store = store._tracker_store
    return store


async def visible_events(agent: Any, sender_id: str, limit: int) -> List[Event]:
    """The latest ``limit`` user and bot messages of the whole retained conversation, oldest first."""
    store = innermost(agent.tracker_store)
    reader = getattr(store, "visible_events", None)
    if reader is not None:
        return list(await reader(sender_id, limit))
    full = getattr(store, "retrieve_full_tracker", None)
    tracker = await (full(sender_id) if full is not None else store.retrieve(sender_id))
    events = [event for event in (tracker.events if tracker else []) if isinstance(event, (UserUttered, BotUttered))]
    return events[-limit:]


async def forget_conversation(agent: Any, sender_id: str) -> None:
    """Deletes a conversation from the tracker store, holding its lock so no turn is half-way through.

    Raises:
        ForgetNotSupported: if the tracker store has no way to delete.
    """
    store: TrackerStore = innermost(agent.tracker_store)
    lock_store = getattr(agent, "lock_store", None)
    if lock_store is not None:
        async with lock_store.lock(sender_id):
            await _delete(store, sender_id)
    else:
        await _delete(store, sender_id)


async def _delete(store: Any, sender_id: str) -> None:
    delete = getattr(store, "delete_conversation", None)
    if delete is not None:
        await delete(sender_id)
    elif isinstance(store, InMemoryTrackerStore):
        store.store.pop(sender_id, None)
    else:
        raise ForgetNotSupported(f"{type(store).__name__} cannot delete a conversation")
