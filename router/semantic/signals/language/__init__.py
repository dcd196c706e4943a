"""language: which language the last user message is written in, among those listed.

py3langid (a fork of langid.py) ships its model in the package, so nothing is
downloaded. It scores byte n-grams of the text with a naive Bayes model over ~140
languages and, with `norm_probs=True`, turns the scores into probabilities (a
softmax tempered by √bytes, so long and short texts are comparably confident).

    text shorter than minChars            → not fired: too short to tell
    best language ∉ languages             → not fired
    its probability < minConfidence       → not fired
    otherwise                             → fired, values (code,), score = probability

The model is loaded once per signal, in `create` (about half a second);
classifying 2,000 characters takes about 0.2 ms. It is never restricted to
`languages`: probabilities renormalized over a short list would make a German text
"English" for an English-and-French list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from py3langid.langid import MODEL_FILE, LanguageIdentifier
from pydantic import Field

from triskel.router.semantic.errors import SemanticConfigError
from triskel.router.semantic.signals.base import (
    NOT_FIRED,
    SignalContext,
    SignalInput,
    SignalResult,
)
from triskel.router.semantic.signals.registry import SignalParameters, parse_parameters

TYPE_NAME = "language"
SUMMARY = "The language of the last user message (py3langid), when it is one of those listed."


class LanguageParameters(SignalParameters):
    # Language codes to report (ISO 639-1 such as en, fr, zh; ISO 639-3 where the
    # model has no two-letter code, such as yue): the signal's outputs.
    languages: tuple[str, ...] = Field(min_length=1)
    # Lowest probability of the detected language that fires.
    min_confidence: float = Field(default=0.5, ge=0.0, le=1.0)
    # Texts shorter than this (surrounding whitespace aside) never fire.
    min_chars: int = Field(default=12, ge=1)


class LanguageSignal:
    """Fires with `(code,)` when `text`'s most probable language is one of `outputs`
    with probability ≥ `min_confidence`; score: that probability."""

    def __init__(
        self, name: str, parameters: LanguageParameters, identifier: LanguageIdentifier
    ) -> None:
        self.name = name
        self.outputs: frozenset[str] = frozenset(parameters.languages)
        self._min_confidence = parameters.min_confidence
        self._min_chars = parameters.min_chars
        self._identifier = identifier

    def evaluate(self, request: SignalInput) -> SignalResult:
        text = request.text.strip()
        if len(text) < self._min_chars:
            return NOT_FIRED
        code, probability = self._identifier.classify(text)
        if code not in self.outputs or probability < self._min_confidence:
            return NOT_FIRED
        return SignalResult(True, (str(code),), float(probability))


def create(
    name: str, parameters: Mapping[str, Any], context: SignalContext, path: str
) -> LanguageSignal:
    parsed = parse_parameters(LanguageParameters, parameters, path)
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    known = set(identifier.labels)
    for index, code in enumerate(parsed.languages):
        if code not in known:
            raise SemanticConfigError(
                f"{path}.parameters.languages[{index}]",
                f"{code!r} is not a language py3langid knows "
                "(lower-case ISO 639-1 codes such as en, fr, zh)",
            )
    return LanguageSignal(name, parsed, identifier)
