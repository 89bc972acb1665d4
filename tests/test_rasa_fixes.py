"""The fixes applied to Rasa (bot/rasa_main.py) keep its behaviour."""

from __future__ import annotations

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction

from bot import rasa_main

GOOD = {"events": [{"event": "slot", "name": "last_topic", "value": "plan"}], "responses": [{"text": "Hi"}]}
BAD = {"events": "not a list", "responses": []}


@pytest.mark.parametrize("apply", [False, True])
def test_action_replies_are_checked_the_same_way_before_and_after(apply: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(RemoteAction, "_validate_action_result", RemoteAction._validate_action_result)
    if apply:
        rasa_main.apply_fixes()
        assert RemoteAction._validate_action_result is rasa_main._validate_action_result
    action = RemoteAction("action_answer_topic", None)
    assert action._validate_action_result(GOOD) is True
    with pytest.raises(ValidationError) as error:
        action._validate_action_result(BAD)
    assert "Failed to validate Action server response" in error.value.message


def test_the_validator_is_built_once() -> None:
    assert rasa_main._action_response_validator() is rasa_main._action_response_validator()
