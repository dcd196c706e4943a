"""category-classifier: logistic regression over embeddings, trained at load on exemplars."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from triskel.router.semantic.embedding import Embedder, Vectors
from triskel.router.semantic.errors import SemanticConfigError
from triskel.router.semantic.signals import category_classifier
from triskel.router.semantic.signals.base import SignalContext, SignalInput
from triskel.router.semantic.signals.category_classifier.exemplars import (
    load_packaged,
    packaged_sets,
)
from triskel.router.semantic.signals.category_classifier.fast_scoring import FastScorer
from triskel.router.semantic.signals.category_classifier.features import (
    FeatureSet,
    characters_read,
)

from support.semantic import text_input

PATH = "semantic.signals[2]"
GENERAL = ("chat", "code", "creative", "long_document", "math")

# Two small categories of the user's own: enough to train without the packaged set.
PETS_AND_WEATHER = {
    "pets": ["my dog barks at night", "best food for a kitten", "how often to walk a puppy"],
    "weather": ["will it rain tomorrow", "how hot is it this weekend", "is a storm coming"],
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


def build(embedder: Embedder, **parameters: Any) -> category_classifier.CategoryClassifier:
    return category_classifier.create("domain", parameters, SignalContext(embedder), PATH)


def request(text: str, embedder: Embedder) -> SignalInput:
    return text_input(text, embed=lambda one: embedder.embed([one])[0])


@pytest.fixture(scope="module")
def general(embedder: Embedder) -> category_classifier.CategoryClassifier:
    return build(embedder, builtin="general")


def test_module_exposes_what_the_registry_needs(
    general: category_classifier.CategoryClassifier,
) -> None:
    assert category_classifier.TYPE_NAME == "category-classifier"
    assert category_classifier.SUMMARY
    assert general.name == "domain"
    # Rules may name {signal: domain:math} etc.
    assert general.outputs == frozenset(GENERAL)


def test_packaged_general_set_loads_as_package_data() -> None:
    assert packaged_sets() == ["general"]
    general = load_packaged("general")
    assert sorted(general) == list(GENERAL)
    for category, texts in general.items():
        assert 60 <= len(texts) <= 80, category
        assert len(set(texts)) == len(texts), f"{category} has duplicates"


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("Write a Python function that merges two sorted lists.", "code"),
        ("Write a SQL query that counts orders per customer.", "code"),
        ("Solve for x: 5x - 3 = 12", "math"),
        ("What is the derivative of x^3 + 2x?", "math"),
        ("Write a short poem about the ocean at night.", "creative"),
        ("Write song lyrics about a rainy Monday.", "creative"),
        ("Hi there! How's your day going?", "chat"),
        ("Can you recommend a good book for a long flight?", "chat"),
        (
            "Translate the following paragraph into German: Our office will be closed from "
            "December 24 to January 2. Orders placed during this period will be shipped on "
            "January 3. For urgent matters, please contact our support team by email.",
            "long_document",
        ),
        (
            "Summarize this article: The city council met on Tuesday to discuss the new "
            "budget. Spending on roads rose by 4%, while the parks department saw a cut of 2%. "
            "Several residents spoke against the closure of the public pool, which the council "
            "said costs 300,000 a year to run. A final vote is expected next month.",
            "long_document",
        ),
    ],
)
def test_obvious_requests_get_their_category(
    general: category_classifier.CategoryClassifier,
    embedder: Embedder,
    text: str,
    category: str,
) -> None:
    result = general.evaluate(request(text, embedder))
    assert result.fired
    assert result.values == (category,)
    assert 0.4 <= result.score <= 1.0


@pytest.mark.parametrize("text", ["qzxv wplk trrn bvvc", "flibber gnash quorp", "zzzz"])
@pytest.mark.parametrize("min_confidence", [0.4, 0.95])
def test_score_is_the_top_probability_and_min_confidence_gates_firing(
    embedder: Embedder, text: str, min_confidence: float
) -> None:
    signal = build(embedder, builtin="general", minConfidence=min_confidence)
    result = signal.evaluate(request(text, embedder))
    # The same model trained apart: training is deterministic.
    model, featurizer = category_classifier.train(load_packaged("general"), embedder)
    features = featurizer.transform(text, embedder.embed([text])[0])
    probabilities = model.predict_proba(features)[0]
    # Fired or not, the score is the best category's probability (a miss is explained).
    assert result.score == pytest.approx(float(np.max(probabilities)))
    assert result.fired is (result.score >= min_confidence)
    # Five categories: gibberish is never near-certain of any of them.
    if min_confidence == 0.95:
        assert not result.fired


def test_reported_categories_restrict_values_but_every_category_trains(
    embedder: Embedder,
) -> None:
    signal = build(embedder, builtin="general", categories=["math", "creative"])
    assert signal.outputs == frozenset({"math", "creative"})
    assert signal.evaluate(request("Solve for x: 5x - 3 = 12", embedder)).values == ("math",)
    # Most like code, which still trained: not forced into math or creative.
    code = signal.evaluate(request("Write a Python function that merges two lists.", embedder))
    assert not code.fired


def test_configured_exemplars_add_to_the_packaged_ones(embedder: Embedder) -> None:
    legal = [
        "is this clause in my employment contract enforceable",
        "can my landlord keep my deposit for normal wear and tear",
        "what are my rights if I am fired without notice",
        "do I need a lawyer to contest a will",
    ]
    signal = build(embedder, builtin="general", exemplars={"legal": legal, "math": ["2+2?"]})
    assert signal.outputs == frozenset({*GENERAL, "legal"})
    result = signal.evaluate(request("can my employer fire me without any notice", embedder))
    assert result.values == ("legal",)


def test_trains_on_configured_exemplars_alone(embedder: Embedder) -> None:
    signal = build(embedder, exemplars=PETS_AND_WEATHER)
    assert signal.outputs == frozenset(PETS_AND_WEATHER)
    assert signal.evaluate(request("is it going to rain today", embedder)).values == ("weather",)
    assert signal.evaluate(request("my cat will not eat", embedder)).values == ("pets",)


def test_training_is_deterministic(embedder: Embedder) -> None:
    first = build(embedder, builtin="general")
    second = build(embedder, builtin="general")
    for text in ["hello there", "sort a list in python", "a poem about rain"]:
        assert first.evaluate(request(text, embedder)) == second.evaluate(request(text, embedder))


def test_reads_the_shared_embedding_and_embeds_nothing_itself(embedder: Embedder) -> None:
    counting = CountingEmbedder(embedder)
    signal = build(counting, exemplars=PETS_AND_WEATHER)
    counting.texts_embedded = 0
    shared = request("will it snow tonight", counting)
    signal.evaluate(shared)
    signal.evaluate(shared)
    # Embedded once, by SignalInput, however many times it is read.
    assert counting.texts_embedded == 1
    assert shared.has_embedding


@pytest.mark.parametrize("text", ["", "  \n"])
def test_blank_text_does_not_fire_nor_embed(
    general: category_classifier.CategoryClassifier, embedder: Embedder, text: str
) -> None:
    shared = request(text, embedder)
    assert not general.evaluate(shared).fired
    assert not shared.has_embedding


@pytest.mark.parametrize(
    ("parameters", "path", "message"),
    [
        # Neither exemplars nor a packaged set: nothing to train on.
        ({}, f"{PATH}.parameters", "exemplars, builtin, or both"),
        # One category cannot be told apart from anything.
        (
            {"exemplars": {"pets": PETS_AND_WEATHER["pets"]}},
            f"{PATH}.parameters.exemplars",
            "at least 2 categories",
        ),
        # Two exemplars of math: three are needed.
        (
            {"exemplars": {**PETS_AND_WEATHER, "math": ["2+2", "solve x^2=4"]}},
            f"{PATH}.parameters.exemplars.math",
            "2 exemplar",
        ),
        (
            {"exemplars": {**PETS_AND_WEATHER, "math": ["2+2", " ", "3*3"]}},
            f"{PATH}.parameters.exemplars.math[1]",
            "blank",
        ),
        # A category neither the packaged set nor the user trains on.
        (
            {"builtin": "general", "categories": ["math", "legal"]},
            f"{PATH}.parameters.categories[1]",
            "unknown category 'legal'; known: chat, code, creative, long_document, math",
        ),
        (
            {"builtin": "medical"},
            f"{PATH}.parameters.builtin",
            "known: general",
        ),
        ({"builtin": "general", "minConfidence": 1.5}, f"{PATH}.parameters.minConfidence", ""),
        ({"builtin": "general", "categories": []}, f"{PATH}.parameters.categories", ""),
        ({"builtin": "general", "threshold": 0.5}, f"{PATH}.parameters.threshold", ""),
    ],
)
def test_bad_parameters_are_refused_at_their_path(
    embedder: Embedder, parameters: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(SemanticConfigError) as error:
        build(embedder, **parameters)
    assert error.value.path == path
    assert message in error.value.message


def test_needs_an_embedding_model() -> None:
    with pytest.raises(RuntimeError, match="embedding model"):
        category_classifier.create("domain", {"exemplars": PETS_AND_WEATHER}, SignalContext(), PATH)


@pytest.mark.parametrize("features", list(FeatureSet))
def test_fast_scoring_equals_scikit_learns(embedder: Embedder, features: FeatureSet) -> None:
    # Short, long, multilingual, code, odd whitespace, a word shorter than the n-grams.
    texts = [
        "How do I reverse a list in Python?",
        "Écris une fonction JavaScript qui vérifie un palindrome",
        "def f(x):\n    return x ** 2  # square\t\tit",
        "integral x^2 sin x dx",
        "a b c",
        "写一首关于秋天的诗",
        "Summarize this report: " + "The quarterly revenue grew by ten percent. " * 40,
        "",
    ]
    model, featurizer = category_classifier.train(load_packaged("general"), embedder, features)
    scorer = FastScorer(model, featurizer.vectorizer)
    for text in texts:
        read = characters_read(text)
        embedding = embedder.embed([text or " "])[0]
        expected = model.predict_proba(featurizer.transform(read, embedding))[0]
        assert scorer.probabilities(read, embedding) == pytest.approx(expected, abs=1e-6), text
    assert scorer.classes == [str(c) for c in model.classes_]
