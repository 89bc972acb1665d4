"""Check the NLU data: no duplicates in training, and no held-out example also in training.

Held out: ``tests/nlu_test.yml`` (Rasa format) and every blind-written set in ``tests/blind/``
(lists of ``{text: ...}``), which must share no sentence with ``data/nlu/`` (issue 9). Examples
are compared after lower-casing, dropping punctuation and collapsing spaces.
"""

import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import List

import yaml

from rasa.shared.nlu.training_data.loading import load_data


def norm(text: str) -> str:
    """Folds case, punctuation and spacing so near-copies compare equal."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"[^\w£ ]+", " ", text)
    return " ".join(text.split())


def blind_leaks(seen: "defaultdict[str, set]", blind_files: List[str]) -> int:
    """Prints and counts the blind-written sentences that are also training examples."""
    problems = 0
    for name in blind_files:
        entries = yaml.safe_load(Path(name).read_text(encoding="utf-8"))
        texts: List[str] = []
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and "text" in entry:
                texts.append(str(entry["text"]))
            elif isinstance(entry, dict):
                texts += [str(turn["text"]) for turn in entry.get("turns", [])]
        for text in texts:
            if norm(text) in seen:
                print(f"BLIND LEAK {text!r} ({Path(name).name}) is in training as {sorted(seen[norm(text)])}")
                problems += 1
    return problems


def main(train_dir: str, test_file: str, blind_files: List[str]) -> int:
    """Returns 1 if the training data or the held-out sets have a duplicate, a conflict or an overlap."""
    train = load_data(train_dir)
    test = load_data(test_file)
    seen = defaultdict(set)
    problems = 0
    for ex in train.intent_examples:
        seen[norm(ex.get("text"))].add(ex.get("intent"))
    for key, intents in seen.items():
        if len(intents) > 1:
            print(f"TRAIN CONFLICT {key!r}: {sorted(intents)}")
            problems += 1
    counts: "defaultdict[str, int]" = defaultdict(int)
    for ex in train.intent_examples:
        counts[norm(ex.get("text"))] += 1
    for key, n in counts.items():
        if n > 1:
            print(f"TRAIN DUPLICATE {key!r} x{n}")
            problems += 1
    test_seen: "defaultdict[str, int]" = defaultdict(int)
    for ex in test.intent_examples:
        key = norm(ex.get("text"))
        test_seen[key] += 1
        if key in seen:
            print(f"LEAK {ex.get('text')!r} ({ex.get('intent')}) is in training as {sorted(seen[key])}")
            problems += 1
    for key, n in test_seen.items():
        if n > 1:
            print(f"TEST DUPLICATE {key!r} x{n}")
            problems += 1
    # safeguarding is owned and tested elsewhere (tests/safety/), so it is not in nlu_test.yml.
    missing = (set(train.intents) ^ set(test.intents)) - {"safeguarding"}
    if missing:
        print(f"INTENTS NOT IN BOTH: {sorted(missing)}")
        problems += 1
    per: "defaultdict[str, int]" = defaultdict(int)
    for ex in test.intent_examples:
        per[ex.get("intent")] += 1
    problems += blind_leaks(seen, blind_files)
    print(
        f"train={len(train.intent_examples)} test={len(test.intent_examples)} blind files={len(blind_files)} "
        f"problems={problems}"
    )
    print("test per intent:", dict(sorted(per.items())))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
