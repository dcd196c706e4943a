"""What the classifier reads of a text: its embedding, and optionally its characters.

    embedding                 the shared sentence embedding (one per request)
    embedding-and-characters  the embedding next to TF-IDF weights of the text's
                              character 3- to 5-grams within words (scikit-learn's
                              TfidfVectorizer; the vocabulary: n-grams found in at
                              least two exemplars)

Character n-grams carry what a small static embedding loses: code punctuation and
identifiers, digits and operators, misspellings, and words of languages the
embedding model barely knows. Both parts are unit length, so neither dominates.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    # Imported where used: see the category classifier's imports.
    from sklearn.feature_extraction.text import TfidfVectorizer

# A dense array or a SciPy sparse matrix (SciPy ships no type information).
Matrix = Any
# Characters of a text the n-grams are taken from (see characters_read).
MAX_CHARACTERS_READ = 600


class FeatureSet(StrEnum):
    EMBEDDING = "embedding"
    EMBEDDING_AND_CHARACTERS = "embedding-and-characters"


class Featurizer:
    def __init__(self, features: FeatureSet) -> None:
        self._characters: TfidfVectorizer | None = None
        if features is FeatureSet.EMBEDDING_AND_CHARACTERS:
            from sklearn.feature_extraction.text import TfidfVectorizer  # here: see the imports

            self._characters = TfidfVectorizer(
                analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, min_df=2
            )

    def fit(self, texts: Sequence[str], embeddings: npt.NDArray[np.float32]) -> Matrix:
        """The exemplars' features; learns the character vocabulary."""
        if self._characters is None:
            return embeddings
        return _joined(embeddings, self._characters.fit_transform(map(characters_read, texts)))

    @property
    def vectorizer(self) -> TfidfVectorizer | None:
        """The fitted character vectorizer (None: the embedding alone)."""
        return self._characters

    def transform(self, text: str, embedding: npt.NDArray[np.float32]) -> Matrix:
        """One request's features (a single row)."""
        row = embedding.reshape(1, -1)
        if self._characters is None:
            return row
        return _joined(row, self._characters.transform([characters_read(text)]))


def characters_read(text: str) -> str:
    """The part of a text its n-grams are taken from: its head and tail. N-grams are
    counted in Python, character by character; a long text's kind shows in its ends."""
    if len(text) <= MAX_CHARACTERS_READ:
        return text
    half = MAX_CHARACTERS_READ // 2
    return text[:half] + " " + text[-half:]


def _joined(dense: npt.NDArray[np.float32], sparse: Matrix) -> Matrix:
    from scipy.sparse import csr_matrix, hstack  # here, not at the top: see the imports

    return hstack([csr_matrix(dense), sparse]).tocsr()
