"""Probabilities of a TF-IDF + logistic regression pipeline for one message, without sklearn's overhead.

The intent classifier and the safety classifier are both ``Pipeline([("features",
FeatureUnion([TfidfVectorizer, ...])), ("model", LogisticRegression)])``. Their
``predict_proba`` on one message spent most of its time multiplying a sparse row by the
transposed coefficient matrix (measured 2026-12-02: 3.3 ms a message for the intent model, of
which the vectorizers took 0.6 ms). A message has a few hundred non-zero features, so here each
vectorizer's terms pick their rows of a contiguous copy of the coefficients, and the TF-IDF
weights are worked out from the vectorizer's own analyzer, vocabulary and idf (sklearn 1.1 sums
its idf matrix again on every ``transform``): the same numbers (tested against
``predict_proba``), about 0.15 ms a message. Anything of another shape is handed to the
pipeline's own ``predict_proba``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np


class _Terms:
    """One fitted TfidfVectorizer's weighting, for one text at a time."""

    def __init__(self, vectorizer: Any, weights: np.ndarray) -> None:
        self.analyse = vectorizer.build_analyzer()
        self.vocabulary = vectorizer.vocabulary_
        self.binary = bool(vectorizer.binary)
        self.sublinear = bool(vectorizer.sublinear_tf)
        self.idf = np.asarray(vectorizer.idf_, dtype=float) if vectorizer.use_idf else None
        self.norm = vectorizer.norm
        self.weights = weights

    def add_scores(self, text: str, scores: np.ndarray) -> None:
        """Adds this block's share of the linear scores of ``text`` to ``scores``."""
        counts: Dict[int, int] = {}
        for term in self.analyse(text):
            index = self.vocabulary.get(term)
            if index is not None:
                counts[index] = counts.get(index, 0) + 1
        if not counts:
            return
        indices = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        values = np.fromiter(counts.values(), dtype=float, count=len(counts))
        if self.binary:
            values[:] = 1.0
        elif self.sublinear:
            values = np.log(values) + 1.0
        if self.idf is not None:
            values = values * self.idf[indices]
        if self.norm == "l2":
            values = values / np.sqrt(np.dot(values, values))
        elif self.norm == "l1":
            values = values / np.abs(values).sum()
        scores += values @ self.weights[indices]


class LinearTextModel:
    """Wraps a fitted pipeline; ``probabilities(text)`` equals ``pipeline.predict_proba([text])[0]``."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.classes_ = pipeline.classes_
        self._blocks: Optional[List[_Terms]] = _blocks_of(pipeline)
        self._intercept = None if self._blocks is None else np.asarray(pipeline.steps[-1][1].intercept_, dtype=float)

    @property
    def fast(self) -> bool:
        """Whether the pipeline has the shape the fast path reads (else its own predict_proba runs)."""
        return self._blocks is not None

    def probabilities(self, text: str) -> np.ndarray:
        """The probability of each class (in ``classes_`` order) for one text."""
        if self._blocks is None or self._intercept is None:
            return np.asarray(self.pipeline.predict_proba([text])[0])
        scores = self._intercept.copy()
        for block in self._blocks:
            block.add_scores(text, scores)
        if scores.shape[0] == 1:  # two classes: sklearn's logistic of the one score
            positive = 1.0 / (1.0 + np.exp(-scores[0]))
            return np.array([1.0 - positive, positive])
        scores = np.exp(scores - scores.max())
        return scores / scores.sum()


def _blocks_of(pipeline: Any) -> Optional[List[_Terms]]:
    """Each vectorizer with its rows of the coefficients, or None when the pipeline is another shape."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion

    steps = getattr(pipeline, "steps", None)
    if not steps or len(steps) != 2:
        return None
    union, model = steps[0][1], steps[1][1]
    if not isinstance(union, FeatureUnion) or not isinstance(model, LogisticRegression):
        return None
    if union.transformer_weights or model.solver == "liblinear":
        return None  # liblinear is one-vs-rest for many classes: not the softmax below
    if getattr(model, "multi_class", "auto") not in ("auto", "multinomial", "deprecated"):
        return None
    vectorizers = [v for _, v in union.transformer_list]
    if not all(isinstance(v, TfidfVectorizer) and v.norm in ("l2", "l1", None) for v in vectorizers):
        return None
    weights = np.ascontiguousarray(np.asarray(model.coef_, dtype=float).T)  # features x classes
    if weights.shape[1] == 1 and (len(model.classes_) != 2 or getattr(model, "multi_class", "auto") == "multinomial"):
        return None  # sklearn's binary multinomial is a softmax of (-score, score): left to sklearn
    blocks, start = [], 0
    for vectorizer in vectorizers:
        width = len(vectorizer.vocabulary_)
        blocks.append(_Terms(vectorizer, weights[start : start + width]))
        start += width
    if start != weights.shape[0]:
        return None
    return blocks
