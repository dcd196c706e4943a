"""embedding-similarity: which categories' exemplar prompts is the request close to?

Each category is given by a few example prompts. At load every exemplar is embedded
once, into one matrix (a row per exemplar, grouped by category). For a request, its
shared embedding (computed once per request, whatever number of signals read it) is
multiplied by that matrix: the vectors are unit length, so each entry is the cosine
similarity to one exemplar. A category's similarity is then

    max         the similarity of its nearest exemplar
    mean_top3   the mean of its three nearest (all of them when it has fewer)

The signal fires when any category reaches `threshold`; its values are those
categories, most similar first (ties in the order they were configured); its score is
the best category's similarity, clipped to [0, 1]. When it does not fire, the score
still carries that similarity, to explain a near miss. Blank text never fires.

Cost per request: one (exemplars × dim) by dim product; nothing is embedded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import AfterValidator, Field

from triskel.router.semantic.embedding import Embedder
from triskel.router.semantic.signals.base import (
    NOT_FIRED,
    SignalContext,
    SignalInput,
    SignalResult,
)
from triskel.router.semantic.signals.registry import SignalParameters, parse_parameters

TYPE_NAME = "embedding-similarity"
SUMMARY = "Categories whose exemplar prompts are close to the request (cosine similarity)."

Similarities = npt.NDArray[np.float32]


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be blank")
    return text


NonBlank = Annotated[str, AfterValidator(_not_blank)]
Exemplars = Annotated[list[NonBlank], Field(min_length=1)]


class EmbeddingSimilarityParameters(SignalParameters):
    # Category → example prompts; the category names are the values rules may name.
    categories: dict[NonBlank, Exemplars] = Field(min_length=1)
    # Cosine similarity a category must reach for the signal to report it.
    threshold: float = Field(default=0.6, gt=0.0, le=1.0)
    # How a category's exemplar similarities combine: nearest one, or mean of nearest three.
    aggregate: Literal["max", "mean_top3"] = "max"


class EmbeddingSimilarity:
    """Fires with the categories at or above `threshold`, most similar first."""

    def __init__(
        self, name: str, parameters: EmbeddingSimilarityParameters, embedder: Embedder
    ) -> None:
        self.name = name
        self._categories = tuple(parameters.categories)
        self.outputs: frozenset[str] = frozenset(self._categories)
        self._threshold = parameters.threshold
        exemplars = [text for texts in parameters.categories.values() for text in texts]
        # One row per exemplar, categories in configuration order.
        self._exemplar_vectors = embedder.embed(exemplars)
        ends = np.cumsum([len(texts) for texts in parameters.categories.values()])
        self._starts = np.concatenate(([0], ends[:-1]))
        self._spans = list(zip(self._starts.tolist(), ends.tolist(), strict=True))
        aggregates: dict[str, Callable[[Similarities], Similarities]] = {
            "max": self._nearest,
            "mean_top3": self._mean_of_nearest_three,
        }
        self._aggregate = aggregates[parameters.aggregate]

    def evaluate(self, request: SignalInput) -> SignalResult:
        if not request.text.strip():
            return NOT_FIRED
        embedding = request.embedding()
        if not np.isfinite(embedding).all():
            return NOT_FIRED
        per_category = self._aggregate(self._exemplar_vectors @ embedding)
        # Stable sort: equal similarities keep the configured order.
        ranked = np.argsort(-per_category, kind="stable")
        best = float(per_category[ranked[0]])
        score = min(max(best, 0.0), 1.0)
        values = tuple(self._categories[i] for i in ranked if per_category[i] >= self._threshold)
        return SignalResult(bool(values), values, score)

    def _nearest(self, similarities: Similarities) -> Similarities:
        nearest: Similarities = np.maximum.reduceat(similarities, self._starts)
        return nearest

    def _mean_of_nearest_three(self, similarities: Similarities) -> Similarities:
        return np.array(
            [np.sort(similarities[start:end])[-3:].mean() for start, end in self._spans],
            dtype=np.float32,
        )


def create(
    name: str, parameters: Mapping[str, Any], context: SignalContext, path: str
) -> EmbeddingSimilarity:
    parsed = parse_parameters(EmbeddingSimilarityParameters, parameters, path)
    return EmbeddingSimilarity(name, parsed, context.require_embedder())
