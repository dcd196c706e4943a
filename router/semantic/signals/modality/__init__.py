"""modality: does the request carry images?

Fires when the request's messages hold at least `minImages` image parts
(`num_images`); its one value is then `image`, its score 1.0. A text-only request
does not fire (rules say `{not: {signal: modality}}` for it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from triskel.router.semantic.signals.base import (
    NOT_FIRED,
    SignalContext,
    SignalInput,
    SignalResult,
)
from triskel.router.semantic.signals.registry import SignalParameters, parse_parameters

TYPE_NAME = "modality"
SUMMARY = "Images in the request (at least `minImages` of them)."

IMAGE = "image"
FIRED = SignalResult(True, (IMAGE,), 1.0)


class ModalityParameters(SignalParameters):
    min_images: int = Field(default=1, ge=1)


class ModalitySignal:
    """Fires with value `image` when the request has at least `min_images` images."""

    def __init__(self, name: str, min_images: int) -> None:
        self.name = name
        self.outputs: frozenset[str] = frozenset({IMAGE})
        self._min_images = min_images

    def evaluate(self, request: SignalInput) -> SignalResult:
        return FIRED if request.num_images >= self._min_images else NOT_FIRED


def create(
    name: str, parameters: Mapping[str, Any], context: SignalContext, path: str
) -> ModalitySignal:
    return ModalitySignal(name, parse_parameters(ModalityParameters, parameters, path).min_images)
