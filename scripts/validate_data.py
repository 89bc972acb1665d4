"""Runs ``rasa data validate`` and fails on any warning, with one justified exception.

Rasa warns that a response "is not used in any story or rule" when only a custom action,
a form (``utter_ask_<slot>``) or the two-stage fallback (``utter_ask_rephrase``,
``utter_default``) sends it. Such a warning is accepted only when this script can see who
sends the response: its name appears in ``actions/`` or it is one of those built-in uses.
Every other warning fails the check.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import List, Set

import yaml

ROOT = Path(__file__).resolve().parent.parent
UNUSED = re.compile(r"The utterance '(utter_[a-z0-9_]+)' is not used in any story or rule\.")
WARNING = re.compile(r"UserWarning: (.*)|WARNING\s+\S+\s+-\s+(.*)")
FALLBACK_RESPONSES = {"utter_ask_rephrase", "utter_default"}


def sent_elsewhere() -> Set[str]:
    """Response names that a custom action, a form or the fallback sends."""
    names = set(FALLBACK_RESPONSES)
    code = "\n".join(p.read_text() for p in (ROOT / "actions").glob("*.py"))
    names.update(re.findall(r"\"(utter_[a-z0-9_]+)\"", code))
    domain = yaml.safe_load((ROOT / "domain.yml").read_text())
    for form in (domain.get("forms") or {}).values():
        names.update(f"utter_ask_{slot}" for slot in form.get("required_slots", []))
    return names


def main(argv: List[str]) -> int:
    """Runs the validator and judges its warnings."""
    rasa = str(Path(sys.executable).parent / "rasa")
    done = subprocess.run([rasa, "data", "validate", *argv], capture_output=True, text=True, cwd=ROOT, check=False)
    output = done.stdout + done.stderr
    allowed = sent_elsewhere()
    problems = []
    for line in output.splitlines():
        match = WARNING.search(line)
        if not match:
            continue
        message = match.group(1) or match.group(2)
        unused = UNUSED.search(message)
        if unused and unused.group(1) in allowed:
            continue
        problems.append(message)
    if done.returncode != 0:
        problems.append(f"rasa data validate exited with code {done.returncode}")
    if problems:
        print(output[-4000:], file=sys.stderr)
        print("\nrasa data validate: FAILED\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print("rasa data validate: no warnings (responses sent only by actions, forms or the fallback are accepted)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
