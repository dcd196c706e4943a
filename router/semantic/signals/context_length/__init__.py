"""context-length: which configured bands does the prompt's length fall in?

    bands:
      - {name: short, maxTokens: 1000}                     0 ≤ n < 1000
      - {name: long, minTokens: 8000}                      8000 ≤ n

A band holds `minTokens ≤ n < maxTokens` (no `maxTokens`: no upper end), with n the
whole prompt's estimated tokens (`prompt_tokens`, counted before texts are bounded).
Bands may overlap or leave gaps: the signal fires when n is in at least one, and its
values are every band n is in, in the order configured. Score 1.0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from triskel.common.semantic_api import Name
from triskel.router.semantic.errors import SemanticConfigError
from triskel.router.semantic.signals.base import (
    NOT_FIRED,
    SignalContext,
    SignalInput,
    SignalResult,
)
from triskel.router.semantic.signals.registry import SignalParameters, parse_parameters

TYPE_NAME = "context-length"
SUMMARY = "The prompt's length in tokens, as named bands (short, medium, long...)."


class Band(SignalParameters):
    # What rules call it: `{signal: <signal>:<band>}`.
    name: Name
    min_tokens: int = Field(default=0, ge=0)
    # Exclusive; none: no upper end.
    max_tokens: int | None = None


class ContextLengthParameters(SignalParameters):
    bands: tuple[Band, ...] = Field(min_length=1)


class ContextLengthSignal:
    """Fires when `prompt_tokens` is in a band; values: every such band, config order."""

    def __init__(self, name: str, bands: tuple[Band, ...]) -> None:
        self.name = name
        self.outputs: frozenset[str] = frozenset(band.name for band in bands)
        self._bounds = tuple(
            (band.name, band.min_tokens, math.inf if band.max_tokens is None else band.max_tokens)
            for band in bands
        )

    def evaluate(self, request: SignalInput) -> SignalResult:
        tokens = request.prompt_tokens
        inside = tuple(name for name, low, high in self._bounds if low <= tokens < high)
        if not inside:
            return NOT_FIRED
        return SignalResult(True, inside, 1.0)


def create(
    name: str, parameters: Mapping[str, Any], context: SignalContext, path: str
) -> ContextLengthSignal:
    parsed = parse_parameters(ContextLengthParameters, parameters, path)
    first_index: dict[str, int] = {}
    for index, band in enumerate(parsed.bands):
        where = f"{path}.parameters.bands[{index}]"
        if band.name in first_index:
            raise SemanticConfigError(
                f"{where}.name",
                f"band {band.name!r} already defined by bands[{first_index[band.name]}]",
            )
        first_index[band.name] = index
        if band.max_tokens is not None and band.max_tokens <= band.min_tokens:
            raise SemanticConfigError(
                f"{where}.maxTokens",
                f"must be above minTokens ({band.min_tokens}) (got {band.max_tokens})",
            )
    return ContextLengthSignal(name, parsed.bands)
