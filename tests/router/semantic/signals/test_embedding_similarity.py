"""embedding-similarity: the request's shared embedding against each category's exemplars."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from triskel.router.semantic.embedding import Embedder, Vectors
from triskel.router.semantic.errors import SemanticConfigError
from triskel.router.semantic.signals import embedding_similarity
from triskel.router.semantic.signals.base import SignalContext, SignalInput

from support.semantic import text_input

PATH = "semantic.signals[2]"

CATEGORIES = {
    "pets": ["my dog will not stop barking at night", "what food is best for a kitten"],
    "weather": ["will it rain tomorrow in Paris", "how hot will it be this weekend"],
    "travel": ["cheap flights from Berlin to Rome", "best hotels near the beach in Lisbon"],
}


class CountingEmbedder:
    """The real model, counting the texts it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self._inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.texts_embedded = 0

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.texts_embedded += len(texts)
        return self._inner.embed(texts)


def build(embedder: Embedder, **parameters: Any) -> embedding_similarity.EmbeddingSimilarity:
    parameters.setdefault("categories", CATEGORIES)
    return embedding_similarity.create("topic", parameters, SignalContext(embedder), PATH)


def request(text: str, embedder: Embedder) -> SignalInput:
    return text_input(text, embed=lambda one: embedder.embed([one])[0])


def similarities(text: str, exemplars: list[str], embedder: Embedder) -> list[float]:
    """Computed apart from the signal: one cosine per exemplar."""
    vectors = embedder.embed([text, *exemplars])
    return [float(row @ vectors[0]) for row in vectors[1:]]


def test_module_exposes_what_the_registry_needs(embedder: Embedder) -> None:
    assert embedding_similarity.TYPE_NAME == "embedding-similarity"
    assert embedding_similarity.SUMMARY
    signal = build(embedder)
    assert signal.name == "topic"
    # Rules may name {signal: topic:pets} etc.
    assert signal.outputs == frozenset(CATEGORIES)


def test_an_exemplar_itself_is_its_category_at_similarity_one(embedder: Embedder) -> None:
    result = build(embedder).evaluate(request("will it rain tomorrow in Paris", embedder))
    assert result.fired
    assert result.values[0] == "weather"
    assert result.score == pytest.approx(1.0, abs=1e-5)


def test_values_are_best_first_whatever_the_configured_order(embedder: Embedder) -> None:
    text = "is it going to rain on my flight to Rome"
    # A low threshold lets every category through, so the order is what is tested.
    result = build(embedder, threshold=0.01).evaluate(request(text, embedder))
    best = {name: max(similarities(text, texts, embedder)) for name, texts in CATEGORIES.items()}
    expected = sorted((n for n in best if best[n] >= 0.01), key=lambda n: -best[n])
    assert len(expected) >= 2
    assert result.values == tuple(expected)
    assert result.score == pytest.approx(best[expected[0]], abs=1e-5)


@pytest.mark.parametrize(
    ("offset", "fires"),
    [
        # Threshold just under the nearest exemplar's similarity: reported.
        (-0.01, True),
        # Just over it: nothing reaches the threshold.
        (0.01, False),
    ],
)
def test_threshold(embedder: Embedder, offset: float, fires: bool) -> None:
    text = "my puppy barks all night long"
    best = max(similarities(text, CATEGORIES["pets"], embedder))
    others = [
        max(similarities(text, texts, embedder))
        for name, texts in CATEGORIES.items()
        if name != "pets"
    ]
    # Pets is clearly the nearest, so the threshold decides pets alone.
    assert best > max(others) + 0.02
    result = build(embedder, threshold=best + offset).evaluate(request(text, embedder))
    assert result.fired is fires
    assert result.values == (("pets",) if fires else ())
    # Fired or not, the score is the best similarity (a miss is explained).
    assert result.score == pytest.approx(best, abs=1e-5)


def test_mean_top3_averages_the_three_nearest_exemplars(embedder: Embedder) -> None:
    categories = {
        "music": [
            "recommend a jazz album",
            "who played guitar in this band",
            "learn piano chords",
            "best concert halls in Vienna",
        ],
        # Fewer than three exemplars: the mean of all of them.
        "garden": ["when to plant tomatoes", "how to prune roses"],
    }
    text = "recommend a jazz album"
    signal = build(embedder, categories=categories, threshold=0.01, aggregate="mean_top3")
    result = signal.evaluate(request(text, embedder))
    music = similarities(text, categories["music"], embedder)
    garden = similarities(text, categories["garden"], embedder)
    expected = {"music": float(np.mean(sorted(music)[-3:])), "garden": float(np.mean(garden))}
    # The exact exemplar alone would give 1.0; its two next neighbours pull it down.
    assert expected["music"] < 0.9
    assert result.score == pytest.approx(expected["music"], abs=1e-5)
    ranked = sorted(expected, key=lambda name: -expected[name])
    assert result.values == tuple(name for name in ranked if expected[name] >= 0.01)
    assert result.values[0] == "music"


def test_embeds_exemplars_once_at_load_and_never_the_request_itself(
    embedder: Embedder,
) -> None:
    counting = CountingEmbedder(embedder)
    signal = build(counting)
    assert counting.texts_embedded == sum(len(texts) for texts in CATEGORIES.values())
    counting.texts_embedded = 0
    shared = request("cheap flights to Rome", counting)
    assert not shared.has_embedding
    signal.evaluate(shared)
    another = build(embedder, threshold=0.3)
    another.evaluate(shared)
    signal.evaluate(shared)
    # Three evaluations by two signals: the request was embedded once, by SignalInput.
    assert counting.texts_embedded == 1
    assert shared.has_embedding


@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_blank_text_does_not_fire_nor_embed(embedder: Embedder, text: str) -> None:
    shared = request(text, embedder)
    result = build(embedder).evaluate(shared)
    assert not result.fired
    assert not shared.has_embedding


@pytest.mark.parametrize(
    ("parameters", "path"),
    [
        # At least one category.
        ({"categories": {}}, f"{PATH}.parameters.categories"),
        # Each category at least one exemplar, none blank.
        ({"categories": {"pets": []}}, f"{PATH}.parameters.categories.pets"),
        ({"categories": {"pets": ["a dog", " "]}}, f"{PATH}.parameters.categories.pets[1]"),
        ({}, f"{PATH}.parameters.categories"),
        # Threshold in (0, 1].
        ({"categories": CATEGORIES, "threshold": 0}, f"{PATH}.parameters.threshold"),
        ({"categories": CATEGORIES, "threshold": 1.2}, f"{PATH}.parameters.threshold"),
        ({"categories": CATEGORIES, "aggregate": "mean"}, f"{PATH}.parameters.aggregate"),
        ({"categories": CATEGORIES, "topK": 3}, f"{PATH}.parameters.topK"),
    ],
)
def test_bad_parameters_are_refused_at_their_path(
    embedder: Embedder, parameters: dict[str, Any], path: str
) -> None:
    with pytest.raises(SemanticConfigError) as error:
        embedding_similarity.create("topic", parameters, SignalContext(embedder), PATH)
    assert error.value.path == path


def test_needs_an_embedding_model() -> None:
    with pytest.raises(RuntimeError, match="embedding model"):
        embedding_similarity.create("topic", {"categories": CATEGORIES}, SignalContext(), PATH)
