"""The trained classifier's probabilities for one request, without scikit-learn's
per-call overhead.

scikit-learn fits the model (`features.py`, `__init__.py`), but scoring one request
through `TfidfVectorizer.transform` and `predict_proba` costs about 0.7 ms of input
checks and sparse-matrix building, where the arithmetic takes microseconds. This
module applies the fitted parameters directly:

    n-grams   the text's character n-grams within words, as the vectorizer defines
              them (`analyzer="char_wb"`: each whitespace-separated word padded with
              one space on each side, every n-gram of each length in range; a padded
              word shorter than n counts once, whole), lower-cased
    weights   (1 + ln count) · idf per n-gram in the fitted vocabulary, then scaled to
              unit length (`sublinear_tf=True`, the default l2 norm)
    scores    coef · [embedding, weights] + intercept, softmax over the categories

A word's n-grams depend on the word alone (`char_wb` never crosses a space), so each
word's vocabulary columns are computed once and kept (least recently used out,
`WORD_CACHE_SIZE` words): a request then costs one lookup per word, not one per
n-gram, which made n-grams most of the semantic stage's time.

tests/router/semantic/signals/test_category_classifier.py checks that the
probabilities equal scikit-learn's on many texts, so the two cannot drift apart.
"""

from __future__ import annotations

import functools
import math
import re
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    # Annotations only: see the category classifier's imports.
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

Vector = npt.NDArray[np.float32]
_WHITESPACE = re.compile(r"\s\s+")
# Distinct words whose columns are kept: a few MB at most, and far more words than
# the prompts of one deployment use.
WORD_CACHE_SIZE = 65_536


class FastScorer:
    def __init__(self, model: LogisticRegression, vectorizer: TfidfVectorizer | None) -> None:
        coef = np.asarray(model.coef_, dtype=np.float64)
        self.classes = [str(c) for c in model.classes_]
        self._intercept = np.asarray(model.intercept_, dtype=np.float64)
        self._vectorizer = vectorizer
        if vectorizer is None:
            self._embedding_coef, self._ngram_coef = coef, coef[:, :0]
            self._vocabulary: dict[str, int] = {}
            self._idf = np.zeros(0)
            self._lengths = (0, 0)
        else:
            num_ngrams = len(vectorizer.vocabulary_)
            self._embedding_coef = coef[:, : coef.shape[1] - num_ngrams]
            self._ngram_coef = coef[:, coef.shape[1] - num_ngrams :]
            self._vocabulary = dict(vectorizer.vocabulary_)
            self._idf = np.asarray(vectorizer.idf_, dtype=np.float64)
            self._lengths = vectorizer.ngram_range
        # One row per n-gram: a request gathers a few rows, contiguous in memory.
        self._ngram_rows = np.ascontiguousarray(self._ngram_coef.T)
        self._word_columns = functools.lru_cache(maxsize=WORD_CACHE_SIZE)(self._columns_of)
        # Two categories: scikit-learn fits one column and reads it as the second class.
        self._binary = coef.shape[0] == 1

    def probabilities(self, text: str, embedding: Vector) -> npt.NDArray[np.float64]:
        scores = self._embedding_coef @ embedding.astype(np.float64) + self._intercept
        if self._vectorizer is not None:
            columns, weights = self._ngram_weights(text)
            if len(columns):
                scores = scores + weights @ self._ngram_rows[columns]
        if self._binary:
            positive = 1.0 / (1.0 + math.exp(-float(scores[0])))
            return np.array([1.0 - positive, positive])
        scores = scores - scores.max()
        exponentials = np.exp(scores)
        return np.asarray(exponentials / exponentials.sum(), dtype=np.float64)

    def _ngram_weights(self, text: str) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        found: list[int] = []
        for word in _WHITESPACE.sub(" ", text.lower()).split():
            found.extend(self._word_columns(word))
        if not found:
            return np.zeros(0, dtype=np.intp), np.zeros(0)
        columns, counts = np.unique(np.asarray(found, dtype=np.intp), return_counts=True)
        weights = (1.0 + np.log(counts)) * self._idf[columns]
        return columns, weights / np.linalg.norm(weights)

    def _columns_of(self, word: str) -> tuple[int, ...]:
        """The vocabulary columns of one word's n-grams, repeats kept."""
        return tuple(
            column
            for ngram in _char_wb_ngrams(word, *self._lengths)
            if (column := self._vocabulary.get(ngram)) is not None
        )


def _char_wb_ngrams(text: str, low: int, high: int) -> list[str]:
    ngrams: list[str] = []
    for word in _WHITESPACE.sub(" ", text).split():
        padded = f" {word} "
        for length in range(low, high + 1):
            if len(padded) <= length:
                ngrams.append(padded)  # the whole padded word, once for every longer n
                break
            ngrams.extend(padded[i : i + length] for i in range(len(padded) - length + 1))
    return ngrams
