"""random-picker: one candidate uniformly at random, ignoring scores.

The baseline every routing paper compares against (Dynamo reports its KV router
against random; `vllm-router` and `sglang-router` ship it as a policy). Draws
come from the context's seeded `rng`, so a simulation replays exactly.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.registry import PluginParameters, parse_parameters
from triskel.router.scheduling.types import CycleState, Endpoint, SchedulingRequest, ScoredEndpoint

TYPE_NAME = "random-picker"
SUMMARY = "Picks one candidate uniformly at random, ignoring scores."

REASON = "random"


class RandomPickerParameters(PluginParameters):
    """No parameters: randomness comes from the router's (or simulator's) seeded rng."""


class RandomPicker:
    """Each candidate with probability 1/len(candidates)."""

    def __init__(self, name: str, rng: random.Random) -> None:
        self.name = name
        self._rng = rng

    def pick(
        self, request: SchedulingRequest, scored: Sequence[ScoredEndpoint], state: CycleState
    ) -> tuple[Endpoint, str]:
        return self._rng.choice(scored).endpoint, REASON


def create(name: str, parameters: Mapping[str, Any], context: PluginContext) -> RandomPicker:
    parse_parameters(RandomPickerParameters, name, parameters)
    return RandomPicker(name, context.rng)
