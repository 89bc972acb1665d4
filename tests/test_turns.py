"""Never silent, exactly once: the pieces of bot/server/turns.py and bot/server/ready.py on their own."""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.server import turns
from bot.server.ready import action_health_url
from tests.conftest import ROOT


class Domain:
    def __init__(self) -> None:
        import yaml

        self.responses = yaml.safe_load((ROOT / "domain.yml").read_text())["responses"]


def tracker() -> DialogueStateTracker:
    found = DialogueStateTracker("someone", slots=None)
    for event in [
        ActionExecuted("action_listen"),
        UserUttered("how much money", message_id="m1"),
        BotUttered("£180,000 a year", {"buttons": [{"title": "Who pays?", "payload": "who pays"}]}),
        BotUttered("£1,500,000"),
        ActionExecuted("action_listen"),
        UserUttered("who pays for that?", message_id="m2"),
        BotUttered("The district councils"),
        ActionExecuted("action_listen"),
    ]:
        found.update(event)
    return found


def test_a_message_already_answered_gets_the_same_answer_back() -> None:
    replies = turns.replies_after(tracker(), "m1")
    assert replies is not None
    assert [r["text"] for r in replies] == ["£180,000 a year", "£1,500,000"]
    assert replies[0]["buttons"] == [{"title": "Who pays?", "payload": "who pays"}]
    assert [r["text"] for r in turns.replies_after(tracker(), "m2") or []] == ["The district councils"]


@pytest.mark.parametrize("message_id", [None, "", "m3"])
def test_a_new_message_is_handled(message_id: Any) -> None:
    assert turns.replies_after(tracker(), message_id) is None


async def test_the_apology_carries_the_helplines_and_is_sent_once() -> None:
    turns.new_turn()
    channel = CollectingOutputChannel()
    await turns.apologise(channel, "someone", Domain())
    await turns.apologise(channel, "someone", Domain())
    texts: List[str] = [m["text"] for m in channel.messages]
    assert len(texts) == 2
    assert "went wrong" in texts[0]
    assert "999" in texts[1] and "Childline: 0800 1111" in texts[1]


class Response:
    def __init__(self, status: int, body: bytes) -> None:
        self.status, self.body, self.headers, self.content_type = status, body, {}, "application/json"


class Request:
    def __init__(self, path: str) -> None:
        self.path = path


async def test_a_failed_message_is_answered_503_with_the_apology_and_helplines() -> None:
    await turns._fresh_turn(Request("/webhooks/rest/webhook"))
    channel = CollectingOutputChannel()
    turns.mark_failed("test")
    await turns.apologise(channel, "someone", Domain())
    import json

    response = Response(200, json.dumps(channel.messages).encode())
    await turns._failed_turn_status(Request("/webhooks/rest/webhook"), response)
    assert response.status == 503 and response.headers["Retry-After"] == "1"
    body: Dict[str, Any] = json.loads(response.body)
    assert body["error"] == "turn_failed" and "Childline" in body["help"] and "went wrong" in body["message"]
    assert len(body["messages"]) == 2


async def test_an_answered_message_keeps_its_200() -> None:
    await turns._fresh_turn(Request("/webhooks/rest/webhook"))
    response = Response(200, b"[]")
    await turns._failed_turn_status(Request("/webhooks/rest/webhook"), response)
    assert response.status == 200


def test_the_action_servers_health_is_found_from_its_webhook() -> None:
    assert action_health_url("http://actions:5055/webhook") == "http://actions:5055/health"
    assert action_health_url(None) is None
