"""category-classifier: which kind of request is this (code, math, creative, ...)?

A classifier trained at load on labelled exemplars, over the same embeddings every
semantic signal shares:

    exemplars ──embed──▶ (n × dim) ──LogisticRegression.fit──▶ model     at load, once
    request   ──shared embedding──▶ predict_proba ──▶ (best category, probability)

Features are the embedding and, by default, character 3- to 5-grams of the text
(features.py: they carry code punctuation, digits, misspellings and languages the
small embedding barely knows). The model is scikit-learn's LogisticRegression:
multinomial (softmax) over the categories (with two categories, the equivalent binary
logistic regression), class weights balanced so a category with more exemplars is not
favoured, and a fixed random_state, so the same exemplars always give the same model.

Exemplars come from a packaged set (`builtin: general`, see exemplars/general.yaml),
from the configuration (`exemplars`), or both: the configured ones are added to the
packaged ones, category by category. At least 2 categories of at least 3 exemplars.

The signal fires when the best category's probability reaches `minConfidence` (and,
with `categories`, when that category is one of them); its value is that category,
its score that probability. The score is returned when it does not fire too, to
explain a miss. Blank text never fires. No I/O and no training while routing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import numpy as np
from pydantic import AfterValidator, Field, field_validator, model_validator

from triskel.router.semantic.embedding import Embedder
from triskel.router.semantic.errors import SemanticConfigError
from triskel.router.semantic.signals.base import (
    NOT_FIRED,
    SignalContext,
    SignalInput,
    SignalResult,
)
from triskel.router.semantic.signals.category_classifier.exemplars import (
    load_packaged,
    packaged_sets,
)
from triskel.router.semantic.signals.category_classifier.fast_scoring import FastScorer
from triskel.router.semantic.signals.category_classifier.features import (
    FeatureSet,
    Featurizer,
    characters_read,
)
from triskel.router.semantic.signals.registry import SignalParameters, parse_parameters

if TYPE_CHECKING:
    # scikit-learn (with the SciPy and pandas it pulls in) takes ~1.5 s of CPU to import:
    # every router and operator start would pay it, semantic routing configured or not.
    # It is imported when a classifier is built.
    from sklearn.linear_model import LogisticRegression

TYPE_NAME = "category-classifier"
SUMMARY = "The request's category, from a classifier trained at load on labelled exemplars."

MIN_CATEGORIES = 2
MIN_EXEMPLARS_PER_CATEGORY = 3
# Unit-length embeddings have small coordinates, so sklearn's default C=1 penalises
# the weights into flat probabilities (a mean best-class probability under 0.5 over
# `general`'s five classes in cross-validation); C=10 gave the best cross-validated
# log-loss there.
_INVERSE_REGULARISATION = 10.0
_SEED = 0


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be blank")
    return text


NonBlank = Annotated[str, AfterValidator(_not_blank)]


class CategoryClassifierParameters(SignalParameters):
    # Category → labelled example requests; added to `builtin`'s, category by category.
    exemplars: dict[NonBlank, list[NonBlank]] | None = None
    # A packaged exemplar set (exemplars/<name>.yaml), e.g. `general`.
    builtin: str | None = None
    # Below this probability of its best category, the signal does not fire.
    min_confidence: float = Field(default=0.4, ge=0.0, le=1.0)
    # Report only these categories. Every category still trains, so a request most like
    # an unlisted one is recognised as such and does not fire.
    categories: list[str] | None = Field(default=None, min_length=1)
    # What the classifier reads: the embedding alone, or with character n-grams.
    features: FeatureSet = FeatureSet.EMBEDDING_AND_CHARACTERS

    @field_validator("builtin")
    @classmethod
    def _packaged(cls, name: str | None) -> str | None:
        known = packaged_sets()
        if name is not None and name not in known:
            raise ValueError(f"no packaged exemplar set by that name; known: {', '.join(known)}")
        return name

    @model_validator(mode="after")
    def _has_exemplars(self) -> CategoryClassifierParameters:
        if self.exemplars is None and self.builtin is None:
            raise ValueError("needs exemplars, builtin, or both")
        return self


class CategoryClassifier:
    """Fires with (best category,) when its probability reaches `min_confidence`."""

    def __init__(
        self,
        name: str,
        trained: Trained,
        outputs: frozenset[str],
        min_confidence: float,
    ) -> None:
        self.name = name
        self.outputs = outputs
        model, featurizer = trained
        self._scorer = FastScorer(model, featurizer.vectorizer)
        self._min_confidence = min_confidence

    def evaluate(self, request: SignalInput) -> SignalResult:
        if not request.text.strip():
            return NOT_FIRED
        embedding = request.embedding()
        if not np.isfinite(embedding).all():
            return NOT_FIRED
        probabilities = self._scorer.probabilities(characters_read(request.text), embedding)
        best = int(np.argmax(probabilities))
        category = self._scorer.classes[best]
        probability = float(probabilities[best])
        if probability < self._min_confidence or category not in self.outputs:
            return SignalResult(False, (), probability)
        return SignalResult(True, (category,), probability)


def new_model() -> LogisticRegression:
    """The untrained classifier (also what cross-validation measures)."""
    from sklearn.linear_model import LogisticRegression  # here, not at the top: see the imports

    # newton-cg: a handful of iterations on tens of thousands of sparse n-gram
    # features, where lbfgs takes ten times as long.
    return LogisticRegression(
        C=_INVERSE_REGULARISATION,
        class_weight="balanced",
        random_state=_SEED,
        max_iter=1000,
        solver="newton-cg",
    )


Trained: TypeAlias = "tuple[LogisticRegression, Featurizer]"


def train(
    exemplars: Mapping[str, list[str]],
    embedder: Embedder,
    features: FeatureSet = FeatureSet.EMBEDDING_AND_CHARACTERS,
) -> Trained:
    """A classifier fitted on every exemplar's features, labelled by its category."""
    texts = [text for category_texts in exemplars.values() for text in category_texts]
    labels = [category for category, texts in exemplars.items() for _ in texts]
    featurizer = Featurizer(features)
    model = new_model()
    model.fit(featurizer.fit(texts, embedder.embed(texts)), labels)
    return model, featurizer


def training_set(parameters: CategoryClassifierParameters, path: str) -> dict[str, list[str]]:
    """The packaged set with the configured exemplars added (duplicates once), checked."""
    merged = load_packaged(parameters.builtin) if parameters.builtin is not None else {}
    for category, texts in (parameters.exemplars or {}).items():
        merged[category] = list(dict.fromkeys([*merged.get(category, []), *texts]))
    where = f"{path}.parameters.exemplars"
    if len(merged) < MIN_CATEGORIES:
        raise SemanticConfigError(
            where,
            f"a classifier needs at least {MIN_CATEGORIES} categories, "
            f"got {len(merged)} ({', '.join(merged) or 'none'})",
        )
    for category, texts in merged.items():
        if len(texts) < MIN_EXEMPLARS_PER_CATEGORY:
            raise SemanticConfigError(
                f"{where}.{category}",
                f"{len(texts)} exemplar(s); at least {MIN_EXEMPLARS_PER_CATEGORY} "
                "are needed to train on",
            )
    return merged


def _reported(categories: list[str] | None, known: list[str], path: str) -> frozenset[str]:
    if categories is None:
        return frozenset(known)
    for index, category in enumerate(categories):
        if category not in known:
            raise SemanticConfigError(
                f"{path}.parameters.categories[{index}]",
                f"unknown category {category!r}; known: {', '.join(sorted(known))}",
            )
    return frozenset(categories)


def create(
    name: str, parameters: Mapping[str, Any], context: SignalContext, path: str
) -> CategoryClassifier:
    parsed = parse_parameters(CategoryClassifierParameters, parameters, path)
    exemplars = training_set(parsed, path)
    outputs = _reported(parsed.categories, list(exemplars), path)
    trained = train(exemplars, context.require_embedder(), parsed.features)
    return CategoryClassifier(name, trained, outputs, parsed.min_confidence)
