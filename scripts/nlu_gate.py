"""Evaluates the model on the held-out NLU examples and fails below an intent F1 floor.

``python -m scripts.nlu_gate --model models/assistant.tar.gz --test tests/nlu_test.yml --min-f1 0.95``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import List


def main(argv: List[str]) -> int:
    """Runs ``rasa test nlu`` and checks the weighted intent F1 (and prints the weakest intents)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--min-f1", type=float, default=0.95)
    parser.add_argument("--out", default="results/nlu")
    args = parser.parse_args(argv)
    rasa = str(Path(sys.executable).parent / "rasa")
    done = subprocess.run(
        [rasa, "test", "nlu", "--model", args.model, "--nlu", args.test, "--out", args.out, "--no-plot"],
        check=False,
    )
    if done.returncode != 0:
        print(f"error: rasa test nlu failed with code {done.returncode}", file=sys.stderr)
        return done.returncode
    report = json.loads((Path(args.out) / "intent_report.json").read_text())
    f1 = report["weighted avg"]["f1-score"]
    summary_rows = ("micro avg", "macro avg", "weighted avg", "accuracy")
    per_intent = [(name, s["f1-score"]) for name, s in report.items() if name not in summary_rows]
    weakest = sorted(per_intent, key=lambda item: item[1])[:5]
    print("Weakest intents: " + ", ".join(f"{name} {score:.2f}" for name, score in weakest))
    errors = json.loads((Path(args.out) / "intent_errors.json").read_text())
    for error in errors[:20]:
        predicted = (error.get("intent_prediction") or {}).get("name")
        print(f"  wrong: {error['text']!r}: expected {error['intent']}, got {predicted}")
    verdict = "PASS" if f1 >= args.min_f1 else "FAIL"
    print(f"NLU intent F1 (weighted) on {args.test}: {f1:.3f} (floor {args.min_f1}) {verdict}")
    return 0 if f1 >= args.min_f1 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
