"""Routing YAML → plugins → profiles, and its errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from pydantic import ValidationError

from triskel.common.routing_api import RoutingConfig
from triskel.router.scheduling.config import build_scheduler
from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.registry import (
    PluginConfigError,
    PluginParameters,
    PluginRegistry,
    parse_parameters,
)
from triskel.router.scheduling.types import (
    CycleState,
    Endpoint,
    SchedulingRequest,
    ScoredEndpoint,
    Stage,
)


class ConstParameters(PluginParameters):
    value: float = 1.0


class ConstScorer:
    def __init__(self, name: str, value: float) -> None:
        self.name = name
        self.value = value

    def score(
        self, request: SchedulingRequest, candidates: Sequence[Endpoint], state: CycleState
    ) -> list[float]:
        return [self.value] * len(candidates)


class FirstPicker:
    def __init__(self, name: str) -> None:
        self.name = name

    def pick(
        self, request: SchedulingRequest, scored: Sequence[ScoredEndpoint], state: CycleState
    ) -> tuple[Endpoint, str]:
        return scored[0].endpoint, "first"


def registry() -> PluginRegistry:
    reg = PluginRegistry()

    def const(name: str, raw: Mapping[str, Any], context: PluginContext) -> ConstScorer:
        return ConstScorer(name, parse_parameters(ConstParameters, name, raw).value)

    reg.register("const-scorer", const, "a constant score")
    reg.register("first-picker", lambda name, raw, context: FirstPicker(name), "the first")
    return reg


def config(**overrides: Any) -> RoutingConfig:
    data: dict[str, Any] = {
        "plugins": [
            {"type": "const-scorer", "name": "half", "parameters": {"value": 0.5}},
            {"type": "first-picker"},
        ],
        "profiles": [
            {
                "name": "prefill",
                "plugins": [{"pluginRef": "half", "weight": 4}, {"pluginRef": "first-picker"}],
            },
        ],
    }
    data.update(overrides)
    return RoutingConfig.model_validate(data)


def test_profiles_reference_plugins_by_name_with_weights() -> None:
    scheduler = build_scheduler(config(), registry(), PluginContext())
    request = SchedulingRequest("r", "m", Stage.PREFILL, [1], [], 1)
    decision = scheduler.schedule(request, [Endpoint("a", "m", 16)])
    # One scorer at 0.5 with weight 4.
    assert decision.scores == {"a": 2.0}


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (
            {
                "plugins": [
                    {"type": "const-scorer", "parameters": {"value": "x"}},
                    {"type": "first-picker"},
                ],
                "profiles": [],
            },
            "plugin 'const-scorer': parameters.value: Input should be a valid number",
        ),
        (
            {
                "plugins": [
                    {"type": "const-scorer", "parameters": {"valu": 1}},
                    {"type": "first-picker"},
                ],
                "profiles": [],
            },
            "parameters.valu: Extra inputs are not permitted",
        ),
        ({"plugins": [{"type": "nope"}], "profiles": []}, "unknown type 'nope'; known: "),
        (
            {"profiles": [{"name": "prefill", "plugins": [{"pluginRef": "half"}]}]},
            "profile prefill: needs exactly one picker, has 0",
        ),
        (
            {
                "profiles": [
                    {
                        "name": "prefill",
                        "plugins": [
                            {"pluginRef": "half"},
                            {"pluginRef": "first-picker", "weight": 2},
                        ],
                    }
                ]
            },
            "plugin 'first-picker' is not a scorer; weight has no effect",
        ),
    ],
)
def test_bad_plugins_fail_at_load_naming_plugin_and_field(
    overrides: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(PluginConfigError) as caught:
        build_scheduler(config(**overrides), registry(), PluginContext())
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (
            {"profiles": [{"name": "prefill", "plugins": [{"pluginRef": "ghost"}]}]},
            "pluginRef 'ghost' names no plugin",
        ),
        (
            {"plugins": [{"type": "first-picker"}, {"type": "first-picker"}]},
            "plugin names used twice: first-picker",
        ),
        ({"defaultProfile": "missing"}, "defaultProfile 'missing' names no profile"),
    ],
)
def test_inconsistent_references_are_refused(overrides: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        config(**overrides)
