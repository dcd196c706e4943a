"""A signal registry for loader and decision tests: signals that report what they're told.

`fixed` signals fire when the request's text contains their `word` and report the
configured `values`; rules and decisions can then be tested without a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from triskel.router.semantic.signals.base import SignalContext, SignalInput, SignalResult
from triskel.router.semantic.signals.registry import (
    SignalParameters,
    SignalRegistry,
    parse_parameters,
)


class FixedParameters(SignalParameters):
    word: str
    values: tuple[str, ...] = ()


@dataclass
class FixedSignal:
    name: str
    word: str
    outputs: frozenset[str]
    calls: int = 0

    def evaluate(self, request: SignalInput) -> SignalResult:
        self.calls += 1
        if self.word not in request.text:
            return SignalResult(False)
        return SignalResult(True, tuple(sorted(self.outputs)), 1.0)


def create_fixed(
    name: str, parameters: Mapping[str, Any], context: SignalContext, path: str
) -> FixedSignal:
    parsed = parse_parameters(FixedParameters, parameters, path)
    return FixedSignal(name, parsed.word, frozenset(parsed.values))


def fixed_registry() -> SignalRegistry:
    registry = SignalRegistry()
    registry.register("fixed", create_fixed, "Fires when the text contains `word`.")
    return registry


def text_input(text: str, **fields: Any) -> SignalInput:
    return SignalInput(text=text, conversation_text=text, prompt_tokens=len(text) // 4, **fields)
