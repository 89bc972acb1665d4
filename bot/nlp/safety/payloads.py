"""Nothing a user types can pick an intent, an action or a slot.

Rasa reads a message that starts with "/" as an intent, maybe with entities
(``/greet{"location": "Burnley"}``), and applies it after the NLU pipeline, replacing whatever
the pipeline decided, the safety net's verdict included ("/greet@1 i want to die" would get a
greeting). Buttons need that: a button's payload is such a text.

So, before Rasa parses a message: a text that starts with "/" is accepted as a payload only if
it is, exactly, the payload of a button the assistant offered in this conversation (in the part
of it the server has loaded). Any other "/..." text is read as plain words: the leading slashes
are dropped, so the NLU pipeline and the safety net see it like any message. "/restart",
"/session_start", "/safeguarding" or slot-setting payloads nobody offered are words too.

Installed by :func:`install`, called from ``bot/server/patches.py``'s ``apply_fixes``.
"""

from __future__ import annotations

import functools
from typing import Any, Iterable, Optional, Set

INTENT_PREFIX = "/"
_PATCHED = "__payload_check__"


def offered_payloads(events: Iterable[Any]) -> Set[str]:
    """Every button payload the assistant sent in these events."""
    from rasa.shared.core.events import BotUttered

    found: Set[str] = set()
    for event in events:
        if isinstance(event, BotUttered):
            data = event.data or {}
            for button in (data.get("buttons") or []) + (data.get("quick_replies") or []):
                payload = button.get("payload") if isinstance(button, dict) else None
                if isinstance(payload, str):
                    found.add(payload.strip())
    return found


def as_words(text: str) -> str:
    """A "/..." text read as plain words."""
    return text.lstrip(INTENT_PREFIX).lstrip() or text.replace(INTENT_PREFIX, " ").strip()


def checked_text(text: Optional[str], tracker: Any) -> Optional[str]:
    """The text Rasa may parse: unchanged, unless it is a "/" text that is not an offered payload."""
    if not isinstance(text, str) or not text.lstrip().startswith(INTENT_PREFIX):
        return text
    events = getattr(tracker, "events", None) or []
    if text.strip() in offered_payloads(events):
        return text
    return as_words(text.lstrip())


def install() -> None:
    """Wraps Rasa's ``MessageProcessor.parse_message`` with the check (safe to call twice)."""
    from rasa.core.channels.channel import UserMessage
    from rasa.core.processor import MessageProcessor

    original = MessageProcessor.parse_message
    if getattr(original, _PATCHED, False):
        return

    @functools.wraps(original)
    async def parse_message(self: Any, message: UserMessage, tracker: Any = None, *args: Any, **kwargs: Any) -> Any:
        text = checked_text(message.text, tracker)
        if text != message.text:
            message = UserMessage(
                text=text,
                output_channel=message.output_channel,
                sender_id=message.sender_id,
                parse_data=None,
                input_channel=message.input_channel,
                message_id=message.message_id,
                metadata=message.metadata,
            )
        return await original(self, message, tracker, *args, **kwargs)

    setattr(parse_message, _PATCHED, True)
    MessageProcessor.parse_message = parse_message  # type: ignore[method-assign]
