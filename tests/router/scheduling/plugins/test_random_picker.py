"""random-picker: uniform over the candidates, reproducible from the context's rng."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.plugins import random_picker
from triskel.router.scheduling.registry import PluginConfigError
from triskel.router.scheduling.types import CycleState, ScoredEndpoint, Stage

from support.scheduling import endpoint, request, scheduler_from


def scored(*worker_ids: str) -> list[ScoredEndpoint]:
    # Scores differ on purpose: the picker must not look at them.
    return [ScoredEndpoint(endpoint(w), float(i)) for i, w in enumerate(worker_ids)]


def test_unknown_parameter_is_refused_naming_plugin_and_field() -> None:
    with pytest.raises(PluginConfigError, match=r"plugin 'rand'.*parameters\.seed"):
        random_picker.create("rand", {"seed": 1}, PluginContext())


def test_same_seed_same_picks() -> None:
    candidates = scored("a", "b", "c", "d")

    def run(seed: int) -> list[str]:
        picker = random_picker.create("rand", {}, PluginContext(rng=random.Random(seed)))
        return [picker.pick(request(), candidates, CycleState())[0].worker_id for _ in range(50)]

    assert run(7) == run(7)
    assert run(7) != run(8)


def test_every_candidate_is_picked_about_equally() -> None:
    picker = random_picker.create("rand", {}, PluginContext(rng=random.Random(1)))
    candidates = scored("a", "b", "c", "d")
    counts = Counter(
        picker.pick(request(), candidates, CycleState())[0].worker_id for _ in range(4000)
    )
    # Expected 1000 each; a binomial(4000, 1/4) has sd ≈ 27, so ±150 is > 5 sd: not flaky,
    # and the seed is fixed anyway.
    assert set(counts) == {"a", "b", "c", "d"}
    assert all(850 <= n <= 1150 for n in counts.values())


def test_one_candidate_and_reason() -> None:
    picker = random_picker.create("rand", {}, PluginContext())
    chosen, reason = picker.pick(request(), scored("solo"), CycleState())
    assert (chosen.worker_id, reason) == ("solo", "random")


def test_runs_in_a_scheduler() -> None:
    scheduler = scheduler_from(
        [random_picker],
        {
            "plugins": [{"type": "random-picker"}],
            "profiles": [{"name": "decode", "plugins": [{"pluginRef": "random-picker"}]}],
        },
    )
    decision = scheduler.schedule(request(stage=Stage.DECODE), [endpoint("a"), endpoint("b")])
    assert decision.endpoint.worker_id in {"a", "b"}
    assert decision.reason == "random"
    assert "random-picker" in decision.plugin_seconds
