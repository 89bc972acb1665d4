"""Small JSON files a trainable NLU component keeps in the Rasa model."""

from __future__ import annotations

import json
from typing import Any

from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage


def read_json(model_storage: ModelStorage, resource: Resource, name: str, default: Any) -> Any:
    """The JSON file ``name`` a component saved, or ``default`` if there is none (not trained yet)."""
    try:
        with model_storage.read_from(resource) as directory:
            return json.loads((directory / name).read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return default


def write_json(model_storage: ModelStorage, resource: Resource, name: str, data: Any) -> Resource:
    """Saves ``data`` as the JSON file ``name`` of a component; returns its resource."""
    with model_storage.write_to(resource) as directory:
        (directory / name).write_text(json.dumps(data), encoding="utf-8")
    return resource
