"""The person asked to delete this chat and said yes: the conversation is deleted on the server.

The action only confirms. The deletion itself happens in the Rasa server, in the tracker store,
when it stores this turn: a turn that ran this action is not stored, and every earlier event and
checkpoint of the conversation is deleted with it (``bot/storage/tracker_store.py``,
``bot/privacy/erase.py``). So nothing of the conversation is left, not even this turn.
"""

from __future__ import annotations

from typing import List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import AllSlotsReset
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.base import EventType
from actions.constants import ACTION_FORGET_CONVERSATION, UTTER_FORGET_DONE


class ActionForgetConversation(Action):
    """Confirms the deletion; the tracker store deletes the conversation when it stores the turn."""

    def name(self) -> Text:
        """Returns the action's name in the domain."""
        return ACTION_FORGET_CONVERSATION

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> List[EventType]:
        """Says the chat is deleted and forgets every slot for the rest of this turn."""
        dispatcher.utter_message(response=UTTER_FORGET_DONE)
        return [AllSlotsReset()]
