"""max-score-picker: highest total wins; ties split at random."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from triskel.router.scheduling.candidates import Candidates
from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.plugins import kv_utilization, max_score
from triskel.router.scheduling.registry import PluginConfigError
from triskel.router.scheduling.types import CycleState, ScoredEndpoint

from support.scheduling import endpoint, request, scheduler_from


def scored(scores: dict[str, float]) -> list[ScoredEndpoint]:
    return [ScoredEndpoint(endpoint(w), s) for w, s in scores.items()]


def test_unknown_parameter_is_refused_naming_plugin_and_field() -> None:
    with pytest.raises(PluginConfigError, match=r"plugin 'best'.*parameters\.tieBreak"):
        max_score.create("best", {"tieBreak": "first"}, PluginContext())


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ({"a": 0.1, "b": 2.5, "c": 1.0}, "b"),  # one clear maximum
        ({"a": 3.0, "b": 2.5, "c": 1.0}, "a"),  # maximum first in the list
        ({"a": 0.0, "b": 0.0, "c": 0.5}, "c"),  # maximum last
        ({"solo": 0.0}, "solo"),  # one candidate
    ],
)
def test_highest_score_wins(scores: dict[str, float], expected: str) -> None:
    picker = max_score.create("best", {}, PluginContext())
    chosen, reason = picker.pick(request(), scored(scores), CycleState())
    assert (chosen.worker_id, reason) == (expected, "max-score")


def test_ties_are_broken_at_random_among_the_tied_only() -> None:
    picker = max_score.create("best", {}, PluginContext(rng=random.Random(3)))
    candidates = scored({"a": 1.0, "b": 2.0, "c": 2.0, "d": 0.5})
    counts = Counter(
        picker.pick(request(), candidates, CycleState())[0].worker_id for _ in range(2000)
    )
    # Only b and c tie at the top; each should get about 1000 (binomial sd ≈ 22, ±150 safe).
    assert set(counts) == {"b", "c"}
    assert all(850 <= n <= 1150 for n in counts.values())


def test_runs_in_a_scheduler() -> None:
    scheduler = scheduler_from(
        [max_score, kv_utilization],
        {
            "plugins": [{"type": "kv-utilization-scorer"}, {"type": "max-score-picker"}],
            "profiles": [
                {
                    "name": "prefill",
                    "plugins": [
                        {"pluginRef": "kv-utilization-scorer", "weight": 2},
                        {"pluginRef": "max-score-picker"},
                    ],
                }
            ],
        },
    )
    decision = scheduler.schedule(
        request(), [endpoint("full", kv_usage=0.9), endpoint("free", kv_usage=0.2)]
    )
    assert (decision.endpoint.worker_id, decision.reason) == ("free", "max-score")
    # 2·(1 − 0.9) and 2·(1 − 0.2).
    assert decision.scores == pytest.approx({"full": 0.2, "free": 1.6})


def test_the_row_form_draws_as_the_list_form_does() -> None:
    # Same seed, same ties: the same choices, so seeded simulations replay alike.
    by_list = max_score.create("best", {}, PluginContext(rng=random.Random(11)))
    by_row = max_score.create("best", {}, PluginContext(rng=random.Random(11)))
    totals = {"a": 2.0, "b": 1.0, "c": 2.0, "d": 2.0}
    candidates = Candidates([endpoint(w) for w in totals])
    column = np.array(list(totals.values()))
    listed = [by_list.pick(request(), scored(totals), CycleState())[0] for _ in range(50)]
    rows = [by_row.pick_row(request(), candidates, column, CycleState())[0] for _ in range(50)]
    assert [e.worker_id for e in listed] == [candidates[row].worker_id for row in rows]
    assert set(rows) == {0, 2, 3}
