"""Every message gets an answer once: never an empty reply, never a turn handled twice.

Installed into Rasa by ``bot/server/patches.py`` (``install``):

- **Never silent.** Rasa 3.6 logs a failed custom action (the action server down, a timeout,
  an error) and carries on with no reply; a database error or a lock that cannot be had ends
  the message with no reply at all; a channel then answers HTTP 200 with ``[]``. Here, whenever
  a message cannot be answered, the person gets a short apology (``utter_technical_problem``)
  and always the helplines (``utter_safety_fallback_helplines``, 999 and Childline), and the
  HTTP channels (REST, the widget) answer **503** with ``Retry-After``, so a balancer or the
  widget can send the message again. The body is a refusal as the channels make them,
  ``{"error": "turn_failed", "message": <apology>, "help": <helplines>, "messages": [...]}``
  (``messages``: everything the person was sent, apology and helplines last).
- **A failed turn is not kept.** Its events are not saved, so sending the message again (the
  widget does, with the same id) handles it afresh rather than finding half a turn.
- **Exactly once.** A channel passes the client's id for each message as
  ``UserMessage(message_id=...)``; Rasa stores it on the ``UserUttered`` event. When a message
  arrives whose id is already in the conversation (the client sent it again after a network
  error, a 502 or a timeout, perhaps to another replica), its turn is not run again: the bot
  messages that followed it are sent back instead. The check runs under the conversation's
  lock, on the conversation's stored events, so it holds across processes and replicas.
- **No silent reset.** Rasa wraps the tracker store in ``FailSafeTrackerStore``, which, when
  the database fails, reads an empty conversation (a new session, every slot forgotten) and
  writes to an in-memory store that no other process sees. Here the store is used as it is:
  a database error fails the message (after ``bot/storage/engine.py``'s retries), and the person
  is told so.
"""

from __future__ import annotations

import contextvars
import json
import functools
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, OutputChannel, UserMessage
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from actions.constants import UTTER_SAFETY_FALLBACK_HELPLINES, UTTER_TECHNICAL_PROBLEM

logger = logging.getLogger(__name__)

APOLOGY_RESPONSES = (UTTER_TECHNICAL_PROBLEM, UTTER_SAFETY_FALLBACK_HELPLINES)
# HTTP routes whose answer to a failed message becomes 503 (socket.io has no status to set).
MESSAGE_ROUTE_PREFIX = "/webhooks/"
FAILED_STATUS = 503
RETRY_AFTER_S = "1"
FAILED_HEADER = "X-Assistant-Turn"


@dataclass
class TurnState:
    """What happened to the message being handled in this request."""

    failed: bool = False
    reason: str = ""
    replayed: bool = False
    apologised: bool = False
    apology: List[str] = field(default_factory=list)


_TURN: "contextvars.ContextVar[Optional[TurnState]]" = contextvars.ContextVar("lancs_turn", default=None)


def current_turn() -> TurnState:
    """The state of the message being handled here (made on first use in this context)."""
    state = _TURN.get()
    if state is None:
        state = TurnState()
        _TURN.set(state)
    return state


def new_turn() -> TurnState:
    """Starts a fresh state for a new request or message (visible to tasks started from here)."""
    state = TurnState()
    _TURN.set(state)
    return state


def mark_failed(reason: str) -> None:
    """Records that the message being handled cannot be answered properly."""
    state = current_turn()
    if not state.failed:
        state.failed, state.reason = True, reason


def apology_messages(domain: Any) -> List[Dict[str, Any]]:
    """The apology and the helplines, from the domain's responses."""
    responses = getattr(domain, "responses", None) or {}
    messages: List[Dict[str, Any]] = []
    for name in APOLOGY_RESPONSES:
        variants = responses.get(name) or []
        if variants and variants[0].get("text"):
            messages.append({"text": variants[0]["text"]})
    return messages


async def apologise(output_channel: Optional[OutputChannel], recipient: Text, domain: Any) -> None:
    """Sends the apology and the helplines to the person (once per message)."""
    state = current_turn()
    if output_channel is None or state.apologised:
        return
    state.apologised = True
    messages = apology_messages(domain)
    state.apology = [str(message["text"]) for message in messages]
    for message in messages:
        try:
            await output_channel.send_response(recipient, dict(message))
        except Exception as error:  # noqa: BLE001 - the channel itself is gone: nothing more to do
            logger.warning(f"Could not send the apology: {type(error).__name__}")
            return


def replies_after(tracker: DialogueStateTracker, message_id: Optional[Text]) -> Optional[List[Dict[str, Any]]]:
    """The bot messages that answered the message ``message_id``, if it is in the tracker.

    Args:
        tracker: the conversation (its recent window is enough: a retry comes within seconds).
        message_id: the client's id for the message.

    Returns:
        The messages, as the output channel received them; None if the id is not in the tracker.
    """
    if not message_id:
        return None
    events = list(tracker.events)
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if isinstance(event, UserUttered) and event.message_id == message_id:
            replies = []
            for later in events[index + 1 :]:
                if isinstance(later, UserUttered):
                    break
                if isinstance(later, BotUttered):
                    replies.append(later.message())
            return replies
    return None


# ---- the patches ------------------------------------------------------------------------------


def _agent_handle_message(original: Callable[..., Any]) -> Callable[..., Any]:
    """``Agent.handle_message``: any failure (lock, database, model not loaded) gets the apology."""

    @functools.wraps(original)
    async def handle_message(self: Any, message: UserMessage) -> Optional[List[Dict[Text, Any]]]:
        state = current_turn()
        state.failed, state.reason, state.replayed, state.apologised = False, "", False, False
        if not self.is_ready():
            mark_failed("the model is not loaded yet")
        else:
            try:
                answer = await original(self, message)
            except Exception as error:  # noqa: BLE001 - every failure ends in an answer
                mark_failed(type(error).__name__)
                logger.error(f"A message could not be handled: {type(error).__name__}")
                logger.debug("Failure details", exc_info=True)
            else:
                if not state.failed:
                    return answer
        domain = getattr(self, "domain", None)
        await apologise(message.output_channel, message.sender_id, domain)
        if isinstance(message.output_channel, CollectingOutputChannel):
            return message.output_channel.messages
        return None

    return handle_message


class _AlreadyAnswered(Exception):
    """Raised inside the processor when the message's id is already in the conversation."""

    def __init__(self, replies: List[Dict[str, Any]]) -> None:
        super().__init__("already answered")
        self.replies = replies


def _processor_handle_message_with_tracker(original: Callable[..., Any]) -> Callable[..., Any]:
    """``MessageProcessor._handle_message_with_tracker``: stops before understanding a message again.

    Rasa calls it with the conversation just read (under its lock), before the message is parsed.
    """

    @functools.wraps(original)
    async def handle_message_with_tracker(self: Any, message: UserMessage, tracker: DialogueStateTracker) -> None:
        replies = replies_after(tracker, message.message_id)
        if replies is not None:
            raise _AlreadyAnswered(replies)
        await original(self, message, tracker)

    return handle_message_with_tracker


def _processor_handle_message(original: Callable[..., Any]) -> Callable[..., Any]:
    """``MessageProcessor.handle_message``: answers a message already handled from what was stored."""

    @functools.wraps(original)
    async def handle_message(self: Any, message: UserMessage) -> Optional[List[Dict[Text, Any]]]:
        try:
            return await original(self, message)
        except _AlreadyAnswered as answered:
            replies = answered.replies
        current_turn().replayed = True
        logger.info("A message arrived again with the same id: its stored answer was sent back")
        for reply in replies:
            await message.output_channel.send_response(message.sender_id, reply)
        if isinstance(message.output_channel, CollectingOutputChannel):
            return message.output_channel.messages
        return None

    return handle_message


def _processor_run_action(original: Callable[..., Any]) -> Callable[..., Any]:
    """``MessageProcessor._run_action``: after a failed action, predict nothing more."""

    @functools.wraps(original)
    async def run_action(self: Any, action: Any, tracker: Any, output_channel: Any, nlg: Any, prediction: Any) -> bool:
        should_go_on = await original(self, action, tracker, output_channel, nlg, prediction)
        if current_turn().failed:
            await apologise(output_channel, tracker.sender_id, self.domain)
            return False
        return bool(should_go_on)

    return run_action


def _remote_action_run(original: Callable[..., Any]) -> Callable[..., Any]:
    """``RemoteAction.run``: records the failure (Rasa's processor then logs it and carries on)."""

    @functools.wraps(original)
    async def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await original(self, *args, **kwargs)
        except Exception as error:
            mark_failed(f"action {self.name()}: {type(error).__name__}")
            raise

    return run


def _processor_save_tracker(original: Callable[..., Any]) -> Callable[..., Any]:
    """``MessageProcessor.save_tracker``: a failed turn is not kept, so a retry starts afresh."""

    @functools.wraps(original)
    async def save_tracker(self: Any, tracker: DialogueStateTracker) -> None:
        if current_turn().failed:
            logger.info("A turn failed and was not stored; sending the message again retries it")
            return
        await original(self, tracker)

    return save_tracker


def _no_failsafe(_store: Any, domain: Any) -> Any:
    """``Agent._create_tracker_store``: the configured store as it is, never an in-memory fallback."""
    if _store is None:  # no tracker store configured at all (not this project's servers)
        from rasa.core.tracker_store import InMemoryTrackerStore

        return InMemoryTrackerStore(domain)
    _store.domain = domain
    return _store


async def _fresh_turn(request: Any) -> None:
    """Sanic request middleware: each request starts with no failure recorded."""
    new_turn()


async def _failed_turn_status(request: Any, response: Any) -> None:
    """Sanic response middleware: a failed message is answered 503 (with the apology as body)."""
    state = _TURN.get()
    if state is None or not request.path.startswith(MESSAGE_ROUTE_PREFIX):
        return
    if state.failed and response.status == 200:
        try:
            sent = json.loads(response.body or b"[]")
        except ValueError:
            sent = []
        apology = state.apology + ["", ""]
        body = {"error": "turn_failed", "message": apology[0], "help": apology[1], "messages": sent}
        response.body = json.dumps(body).encode()
        response.content_type = "application/json"
        response.status = FAILED_STATUS
        response.headers["Retry-After"] = RETRY_AFTER_S
        response.headers[FAILED_HEADER] = "failed"
    elif state.replayed:
        response.headers[FAILED_HEADER] = "replayed"


def install_http(app: Any) -> None:
    """Adds the middleware that turns a failed message into a 503 to a Sanic app."""
    app.register_middleware(_fresh_turn, "request")
    app.register_middleware(_failed_turn_status, "response")


def install_rasa() -> None:
    """Patches Rasa's agent, processor and remote action (safe to call more than once)."""
    from rasa.core.actions.action import RemoteAction
    from rasa.core.agent import Agent
    from rasa.core.processor import MessageProcessor

    patches = [
        (Agent, "handle_message", _agent_handle_message),
        (MessageProcessor, "handle_message", _processor_handle_message),
        (MessageProcessor, "_handle_message_with_tracker", _processor_handle_message_with_tracker),
        (MessageProcessor, "_run_action", _processor_run_action),
        (MessageProcessor, "save_tracker", _processor_save_tracker),
        (RemoteAction, "run", _remote_action_run),
    ]
    for owner, name, wrap in patches:
        current = getattr(owner, name)
        if not getattr(current, "__wrapped_by_lancs__", False):
            wrapped = wrap(current)
            setattr(wrapped, "__wrapped_by_lancs__", True)
            setattr(owner, name, wrapped)
    Agent._create_tracker_store = staticmethod(_no_failsafe)  # type: ignore[assignment]
