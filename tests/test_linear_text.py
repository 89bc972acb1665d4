"""The fast one-message path of the TF-IDF classifiers gives exactly what sklearn's pipeline gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any, List

import numpy as np
import pytest
import yaml
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from bot.nlp.intent_classifier import _pipeline
from bot.nlp.linear_text import LinearTextModel

ROOT = Path(__file__).resolve().parents[1]


def _texts() -> List[str]:
    """Messages of every kind: the blind-written questions, odd input, and words no model has seen."""
    texts: List[str] = []
    for path in sorted((ROOT / "tests" / "blind").glob("facts_*.yml"))[:1]:
        texts += [str(case["text"]) for case in yaml.safe_load(path.read_text(encoding="utf-8"))][:150]
    return texts + [
        "",
        "   ",
        "zzzz qqqq xxxxx",
        "hi",
        "HOW MUCH MONEY DO SCHOOLS GIVE??",
        "wat r the outcomes lol",
        "é ñ 漢字 🙂",
        "the plan " * 200,
    ]


def _training() -> Any:
    words = ["plan", "money", "outcomes", "boards", "trust", "help", "safe", "school", "early help", "funding"]
    texts = [f"{a} {b} please" for a in words for b in words] + [f"what about the {w}?" for w in words]
    labels = [f"topic_{i % 7}" for i in range(len(texts))]
    return texts, labels


def _same(model: LinearTextModel, pipeline: Any, texts: List[str]) -> None:
    assert model.fast
    for text in texts:
        expected = pipeline.predict_proba([text])[0]
        np.testing.assert_allclose(model.probabilities(text), expected, rtol=1e-9, atol=1e-12, err_msg=text)


def test_many_classes_match_the_pipeline() -> None:
    texts, labels = _training()
    pipeline = _pipeline({"C": 8.0, "random_seed": 42}).fit(texts, labels)
    _same(LinearTextModel(pipeline), pipeline, _texts() + texts[:20])


def test_two_classes_match_the_pipeline() -> None:
    texts, labels = _training()
    binary = ["danger" if label in ("topic_1", "topic_4") else "ordinary" for label in labels]
    pipeline = Pipeline(
        [
            (
                "features",
                FeatureUnion(
                    [
                        ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
                        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
                    ]
                ),
            ),
            ("model", LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000)),
        ]
    ).fit(texts, binary)
    _same(LinearTextModel(pipeline), pipeline, _texts() + texts[:20])


@pytest.mark.parametrize(
    "vectorizer", [TfidfVectorizer(binary=True, norm="l1"), TfidfVectorizer(use_idf=False, norm=None, lowercase=False)]
)
def test_other_tfidf_settings_match_the_pipeline(vectorizer: TfidfVectorizer) -> None:
    texts, labels = _training()
    pipeline = Pipeline([("features", FeatureUnion([("words", vectorizer)])), ("model", LogisticRegression())])
    pipeline.fit(texts, labels)
    _same(LinearTextModel(pipeline), pipeline, _texts())


def test_another_shape_is_left_to_sklearn() -> None:
    texts, labels = _training()
    pipeline = Pipeline(
        [("features", FeatureUnion([("counts", CountVectorizer())])), ("model", LogisticRegression(max_iter=500))]
    ).fit(texts, labels)
    model = LinearTextModel(pipeline)
    assert not model.fast
    np.testing.assert_array_equal(model.probabilities("the plan"), pipeline.predict_proba(["the plan"])[0])


def test_the_trained_classifiers_use_the_fast_path() -> None:
    from bot.nlp.safety import classifier as risk_model
    from bot.nlp.safety.load import load_matcher

    path = risk_model.resolve(None)
    if not path.exists():
        pytest.skip(f"no safety classifier at {path}: run `make safety-model`")
    risk = risk_model.load(path, load_matcher())
    assert risk.fast.fast
    assert len(_texts()) > 100
    for text in _texts():
        words = risk.prepare(text)
        if words:
            assert risk.score(text) == pytest.approx(float(risk.pipeline.predict_proba([words])[0][1]), abs=1e-12)
