"""A second pair of eyes for the safety net: a small model for wordings no pattern lists.

It scores how likely a message is to come from someone in danger.

It is trained by ``make`` (``python -m bot.nlp.safety.classifier``) from the team's examples in
``knowledge/safety_examples/`` (danger messages by category, and ordinary messages that use
risky words harmlessly) and from the Rasa training data in ``data/nlu/`` (``safeguarding``
examples count as danger, every other intent as ordinary). The model is word and character
n-grams (so misspellings and new slang built from known pieces still score) with a logistic
regression. It lives in ``build/`` like the spaCy pipeline: the Rasa model does not contain it.

A score at or above the threshold in ``config.yml`` gives the gentle check (999 and Childline at
once, then "Is someone being hurt, or in danger?"), never the full safety reply: only the
patterns decide a clear disclosure.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, List, Optional, Sequence, Tuple

import yaml

from bot.nlp.linear_text import LinearTextModel
from bot.nlp.safety.match import SafetyMatcher

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_MODEL_FILE = "build/safety_classifier.joblib"
EXAMPLES_DIR = ROOT / "knowledge" / "safety_examples"
NLU_DIR = ROOT / "data" / "nlu"
SAFEGUARDING_INTENT = "safeguarding"
FORMAT_VERSION = 2


class SafetyClassifierError(RuntimeError):
    """The model file is missing or cannot be used; the message says what to run."""


def read_examples(directory: Path) -> Tuple[List[str], List[str]]:
    """Reads the team's examples: ``danger*.yml`` and ``ordinary*.yml`` lists of ``{text: ...}``.

    Args:
        directory: the folder of example files.

    Returns:
        (danger texts, ordinary texts).

    Raises:
        SafetyClassifierError: a file is not a list of entries with a ``text``.
    """
    danger: List[str] = []
    ordinary: List[str] = []
    for path in sorted(directory.glob("*.yml")):
        entries = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(entries, list) or not all(isinstance(e, dict) and e.get("text") for e in entries):
            raise SafetyClassifierError(f"{path}: must be a list of entries, each with a 'text'")
        texts = [str(e["text"]) for e in entries]
        if path.name.startswith("danger"):
            danger.extend(texts)
        elif path.name.startswith("ordinary"):
            ordinary.extend(texts)
        else:
            raise SafetyClassifierError(f"{path}: name it danger*.yml or ordinary*.yml")
    return danger, ordinary


def read_nlu(directory: Path) -> Tuple[List[str], List[str]]:
    """The Rasa NLU examples: (safeguarding texts, every other intent's texts)."""
    from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLReader

    danger: List[str] = []
    ordinary: List[str] = []
    for path in sorted(directory.rglob("*.yml")):
        for message in RasaYAMLReader().read(path).intent_examples:
            (danger if message.get("intent") == SAFEGUARDING_INTENT else ordinary).append(str(message.get("text")))
    return danger, ordinary


def prepare(matcher: SafetyMatcher, text: str) -> str:
    """The words the model sees: the text as the safety net reads it (normalised, text-speak expanded)."""
    return " ".join(matcher.normaliser(text or ""))


@dataclass
class RiskClassifier:
    """A trained model, and the patterns file whose text-speak list prepares its input.

    A message is read as the safety net reads it: normalised, text-speak expanded. Guarded
    words are kept: "could murder a brew" or "headshot" are themselves signs of an ordinary
    message, and the model learns them from the ordinary examples (measured: removing them
    raised false alarms).
    """

    pipeline: Any
    matcher: SafetyMatcher
    fast: LinearTextModel = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.fast = LinearTextModel(self.pipeline)

    def prepare(self, text: str) -> str:
        """The words the model sees."""
        return prepare(self.matcher, text)

    def score(self, text: str) -> float:
        """The probability that ``text`` comes from someone in danger (0 to 1)."""
        words = self.prepare(text)
        if not words:
            return 0.0
        return float(self.fast.probabilities(words)[1])

    def scores(self, texts: Sequence[str]) -> List[float]:
        """Scores many texts at once."""
        return [float(p[1]) for p in self.pipeline.predict_proba([self.prepare(t) for t in texts])]


def train(danger: Iterable[str], ordinary: Iterable[str], matcher: SafetyMatcher) -> RiskClassifier:
    """Fits the model.

    Args:
        danger: messages from people who may be in danger.
        ordinary: everything else.
        matcher: the compiled patterns file (its text-speak list prepares the input).
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    positives = list(dict.fromkeys(danger))
    negatives = [t for t in dict.fromkeys(ordinary) if t not in set(positives)]
    texts = [prepare(matcher, t) for t in positives + negatives]
    labels = [1] * len(positives) + [0] * len(negatives)
    pipeline = Pipeline(
        [
            (
                "features",
                FeatureUnion(
                    [
                        ("words", TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True)),
                        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
                    ]
                ),
            ),
            ("model", LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000)),
        ]
    )
    pipeline.fit(texts, labels)
    return RiskClassifier(pipeline, matcher)


def save(classifier: RiskClassifier, path: Path, counts: Tuple[int, int]) -> None:
    """Writes the model (joblib) and a small JSON note beside it."""
    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump({"format": FORMAT_VERSION, "pipeline": classifier.pipeline}, path)
    path.with_suffix(".json").write_text(
        json.dumps({"format": FORMAT_VERSION, "danger_examples": counts[0], "ordinary_examples": counts[1]}, indent=2)
    )


def load(path: Path, matcher: SafetyMatcher) -> RiskClassifier:
    """Reads a model written by :func:`save`; ``matcher`` prepares its input as in training.

    Raises:
        SafetyClassifierError: the file is missing or was written by another version.
    """
    import joblib

    if not path.exists():
        raise SafetyClassifierError(f"{path}: no safety classifier. Run `make safety-model` (make train does it).")
    data = joblib.load(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
        raise SafetyClassifierError(f"{path}: written by another version. Run `make safety-model`.")
    return RiskClassifier(data["pipeline"], matcher)


def resolve(path: Optional[str]) -> Path:
    """A model path from config: relative paths are looked up from the project root."""
    candidate = Path(path or DEFAULT_MODEL_FILE)
    return candidate if candidate.is_absolute() else ROOT / candidate


def main(argv: List[str]) -> int:
    """``python -m bot.nlp.safety.classifier --out FILE``: trains and saves the model."""
    from bot.nlp.safety.load import load_matcher

    parser = argparse.ArgumentParser(description="Train the safety net's classifier.")
    parser.add_argument("--out", type=Path, default=ROOT / DEFAULT_MODEL_FILE)
    parser.add_argument("--patterns", default=None, help="the patterns file (for its text-speak list)")
    args = parser.parse_args(argv)
    try:
        danger, ordinary = read_examples(EXAMPLES_DIR)
    except (OSError, yaml.YAMLError, SafetyClassifierError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    nlu_danger, nlu_ordinary = read_nlu(NLU_DIR)
    classifier = train(danger + nlu_danger, ordinary + nlu_ordinary, load_matcher(args.patterns))
    counts = (len(danger) + len(nlu_danger), len(ordinary) + len(nlu_ordinary))
    save(classifier, args.out, counts)
    print(f"safety classifier: {counts[0]} danger and {counts[1]} ordinary examples -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
