"""modality: fires with value `image` when the request has at least minImages images."""

from __future__ import annotations

from typing import Any

import pytest

from triskel.router.semantic.errors import SemanticConfigError
from triskel.router.semantic.signals import modality
from triskel.router.semantic.signals.base import (
    NOT_FIRED,
    SignalContext,
    SignalInput,
    SignalResult,
)

PATH = "semantic.signals[3]"


def test_module_exposes_what_the_registry_needs() -> None:
    assert modality.TYPE_NAME == "modality"
    assert modality.SUMMARY
    signal = modality.create("vision", {}, SignalContext(), PATH)
    assert signal.name == "vision"
    assert signal.outputs == frozenset({"image"})


@pytest.mark.parametrize(
    ("parameters", "num_images", "expected"),
    [
        # Text only: nothing to see.
        ({}, 0, NOT_FIRED),
        # minImages defaults to 1.
        ({}, 1, SignalResult(True, ("image",), 1.0)),
        ({}, 5, SignalResult(True, ("image",), 1.0)),
        # At least minImages: one short does not fire, exactly enough does.
        ({"minImages": 3}, 2, NOT_FIRED),
        ({"minImages": 3}, 3, SignalResult(True, ("image",), 1.0)),
    ],
)
def test_fires_on_images(
    parameters: dict[str, Any], num_images: int, expected: SignalResult
) -> None:
    signal = modality.create("vision", parameters, SignalContext(), PATH)
    request = SignalInput(
        text="what is this?",
        conversation_text="what is this?",
        prompt_tokens=4,
        num_images=num_images,
    )
    assert signal.evaluate(request) == expected


@pytest.mark.parametrize(
    ("parameters", "path", "message"),
    [
        (
            {"minImages": 0},
            "semantic.signals[3].parameters.minImages",
            "greater than or equal to 1",
        ),
        ({"minImages": "many"}, "semantic.signals[3].parameters.minImages", "valid integer"),
        ({"kinds": ["audio"]}, "semantic.signals[3].parameters.kinds", "not permitted"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(
    parameters: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(SemanticConfigError) as caught:
        modality.create("vision", parameters, SignalContext(), PATH)
    assert caught.value.path == path
    assert message in caught.value.message
