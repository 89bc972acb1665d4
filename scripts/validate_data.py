"""Checks the training data with Rasa's own validator, judging its results, not its log text.

``rasa data validate`` prints warnings and this project used to read them back. Here the checks
of ``rasa.validator.Validator`` are called one by one and their return values decide (each is
run with ``ignore_warnings=False``, so any warning makes it return False). One check is done our
own way: Rasa calls a response "unused" when no story or rule sends it, but here many responses
are sent by custom actions, forms (``utter_ask_<slot>``) or buttons. A response is accepted when
a rule or story sends it, or when its name appears in ``actions/`` or it asks for a form's slot.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Callable, Dict, List, Set

import yaml

ROOT = Path(__file__).resolve().parent.parent


def sent_elsewhere(root: Path = ROOT) -> Set[str]:
    """Response names that a custom action or a form sends."""
    code = "\n".join(p.read_text(encoding="utf-8") for p in (root / "actions").glob("*.py"))
    names = set(re.findall(r"\"(utter_[a-z0-9_]+)\"", code))
    domain = yaml.safe_load((root / "domain.yml").read_text(encoding="utf-8"))
    for form in (domain.get("forms") or {}).values():
        names.update(f"utter_ask_{slot}" for slot in form.get("required_slots", []))
    return names


def unused_responses(validator: object, root: Path = ROOT) -> List[str]:
    """Responses nothing sends: no rule or story, no action, no form."""
    from rasa.shared.core.events import ActionExecuted

    used = {
        event.action_name
        for step in validator.story_graph.story_steps  # type: ignore[attr-defined]
        for event in step.events
        if isinstance(event, ActionExecuted) and event.action_name
    }
    responses = validator._gather_utterance_actions()  # type: ignore[attr-defined]
    return sorted(responses - used - sent_elsewhere(root))


def run_checks(root: Path = ROOT) -> Dict[str, bool]:
    """Runs every check; returns each one's result (True: passed)."""
    from rasa.shared.importers.importer import TrainingDataImporter
    from rasa.validator import Validator

    importer = TrainingDataImporter.load_from_config(
        str(root / "config.yml"), str(root / "domain.yml"), [str(root / "data")]
    )
    validator = Validator.from_importer(importer)
    checks: Dict[str, Callable[[], bool]] = {
        "domain is valid": validator.verify_domain_validity,
        "intents are in the domain and have examples": lambda: validator.verify_intents(False),
        "no example is in two intents": lambda: validator.verify_example_repetition_in_intents(False),
        "stories and rules use known intents": lambda: validator.verify_intents_in_stories(False),
        "no conflicting rules or stories": lambda: validator.verify_story_structure(False),
        "forms in rules exist": validator.verify_forms_in_stories_rules,
        "actions in rules exist": validator.verify_actions_in_stories_rules,
        "form slots exist": validator.verify_form_slots,
        "slot mappings are valid": validator.verify_slot_mappings,
    }
    results = {name: bool(check()) for name, check in checks.items()}
    unused = unused_responses(validator, root)
    results["every response is sent by something" + (f" (unused: {', '.join(unused)})" if unused else "")] = not unused
    return results


def main(argv: List[str]) -> int:
    """Prints each check and fails when one fails."""
    results = run_checks()
    failed = [name for name, ok in results.items() if not ok]
    for name, ok in results.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    if failed:
        print(f"rasa data validation: FAILED ({len(failed)} checks)", file=sys.stderr)
        return 1
    print("rasa data validation: every check of rasa.validator.Validator passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
