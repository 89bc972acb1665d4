"""Runs Rasa's own command line with this project's fixes to Rasa applied first.

``bot/serve.py`` starts the Rasa server as ``python -m bot.rasa_main run ...`` instead of
``rasa run ...``. The fixes are small, each is measured by ``make bench``, and each keeps Rasa's
behaviour exactly:

- **Action response check, built once.** For every custom action, Rasa 3.6 checks the action
  server's reply against a JSON schema with ``jsonschema.validate``, which builds and checks the
  schema's validator again on every call: about 20 ms of CPU per action, 28% of the server's time
  under load (py-spy, see bench/README.md). Here the validator is built once; a bad reply is still
  refused with the same ``jsonschema.ValidationError`` and the same explanation.
"""

from __future__ import annotations

import functools
from typing import Any, Dict

DOCS_HINT = (
    ". Failed to validate Action server response from API, make sure your response from the "
    "Action endpoint is valid. For more information about the format visit "
    "https://rasa.com/docs/rasa/custom-actions"
)


@functools.lru_cache(maxsize=1)
def _action_response_validator() -> Any:
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    spec = RemoteAction.action_response_format_spec()
    cls = validator_for(spec)
    cls.check_schema(spec)
    return cls(spec)


def _validate_action_result(self: Any, result: Dict[str, Any]) -> bool:
    """Rasa's RemoteAction._validate_action_result, with the validator built once."""
    from jsonschema import ValidationError

    try:
        _action_response_validator().validate(result)
    except ValidationError as error:
        error.message += DOCS_HINT
        raise
    return True


def apply_fixes() -> None:
    """Applies the fixes to the Rasa classes in this process (safe to call more than once)."""
    from rasa.core.actions.action import RemoteAction

    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]


def main() -> None:
    """Applies the fixes, then hands over to Rasa's command line (same arguments as ``rasa``)."""
    apply_fixes()
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
