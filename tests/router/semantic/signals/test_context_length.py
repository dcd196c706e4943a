"""context-length: the bands, minTokens ≤ n < maxTokens, the prompt's token count is in."""

from __future__ import annotations

from typing import Any

import pytest

from triskel.router.semantic.errors import SemanticConfigError
from triskel.router.semantic.signals import context_length
from triskel.router.semantic.signals.base import SignalContext, SignalInput, SignalResult

PATH = "semantic.signals[3]"
BANDS = [
    {"name": "short", "maxTokens": 1000},
    {"name": "medium", "minTokens": 1000, "maxTokens": 8000},
    {"name": "long", "minTokens": 8000},
    # Overlaps medium and long: a count may be in two bands.
    {"name": "needs-cache", "minTokens": 4000, "maxTokens": 16000},
]


def build(bands: list[dict[str, Any]]) -> context_length.ContextLengthSignal:
    return context_length.create("ctx", {"bands": bands}, SignalContext(), PATH)


def test_module_exposes_what_the_registry_needs() -> None:
    assert context_length.TYPE_NAME == "context-length"
    assert context_length.SUMMARY
    signal = build(BANDS)
    assert signal.name == "ctx"
    assert signal.outputs == frozenset({"short", "medium", "long", "needs-cache"})


@pytest.mark.parametrize(
    ("prompt_tokens", "values"),
    [
        # minTokens defaults to 0, inclusive.
        (0, ("short",)),
        (999, ("short",)),
        # maxTokens is exclusive: 1000 is medium, not short.
        (1000, ("medium",)),
        (3999, ("medium",)),
        # In two bands: both, in config order.
        (4000, ("medium", "needs-cache")),
        (8000, ("long", "needs-cache")),
        # long has no upper end.
        (15999, ("long", "needs-cache")),
        (16000, ("long",)),
        (10_000_000, ("long",)),
    ],
)
def test_bands_holding_the_count(prompt_tokens: int, values: tuple[str, ...]) -> None:
    request = SignalInput(text="", conversation_text="", prompt_tokens=prompt_tokens)
    assert build(BANDS).evaluate(request) == SignalResult(True, values, 1.0)


def test_a_count_in_a_gap_does_not_fire() -> None:
    # 500–2000 is in no band.
    signal = build([{"name": "tiny", "maxTokens": 500}, {"name": "huge", "minTokens": 2000}])
    request = SignalInput(text="", conversation_text="", prompt_tokens=1200)
    assert signal.evaluate(request).fired is False


@pytest.mark.parametrize(
    ("parameters", "path", "message"),
    [
        ({}, "semantic.signals[3].parameters.bands", "Field required"),
        ({"bands": []}, "semantic.signals[3].parameters.bands", "at least 1 item"),
        (
            {"bands": [{"name": "a"}, {"name": "Long"}]},
            "semantic.signals[3].parameters.bands[1].name",
            "should match pattern",
        ),
        (
            {"bands": [{"name": "a", "minTokens": -1}]},
            "semantic.signals[3].parameters.bands[0].minTokens",
            "greater than or equal to 0",
        ),
        (
            {"bands": [{"name": "a", "maxTokens": 10}, {"name": "a", "minTokens": 10}]},
            "semantic.signals[3].parameters.bands[1].name",
            "band 'a' already defined by bands[0]",
        ),
        # maxTokens must be above minTokens: an empty band could never hold.
        (
            {"bands": [{"name": "a", "minTokens": 100, "maxTokens": 100}]},
            "semantic.signals[3].parameters.bands[0].maxTokens",
            "must be above minTokens (100) (got 100)",
        ),
        (
            {"bands": [{"name": "a", "maxTokens": 0}]},
            "semantic.signals[3].parameters.bands[0].maxTokens",
            "must be above minTokens (0) (got 0)",
        ),
        (
            {"bands": [{"name": "a", "max": 10}]},
            "semantic.signals[3].parameters.bands[0].max",
            "not permitted",
        ),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(
    parameters: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(SemanticConfigError) as caught:
        context_length.create("ctx", parameters, SignalContext(), PATH)
    assert caught.value.path == path
    assert message in caught.value.message
