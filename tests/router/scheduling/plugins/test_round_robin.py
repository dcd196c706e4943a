"""round-robin-picker: next worker id after the last one, stable under rebuilt candidate lists."""

from __future__ import annotations

import pytest

from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.plugins import round_robin
from triskel.router.scheduling.registry import PluginConfigError
from triskel.router.scheduling.types import CycleState, ScoredEndpoint, Stage

from support.scheduling import endpoint, request, scheduler_from


def scored(*worker_ids: str) -> list[ScoredEndpoint]:
    return [ScoredEndpoint(endpoint(worker_id), 0.0) for worker_id in worker_ids]


def picks(
    picker: round_robin.RoundRobinPicker, rounds: list[list[str]], stage: Stage = Stage.PREFILL
) -> list[str]:
    req = request(stage=stage)
    return [picker.pick(req, scored(*ids), CycleState())[0].worker_id for ids in rounds]


def test_unknown_parameter_is_refused_naming_plugin_and_field() -> None:
    with pytest.raises(PluginConfigError, match=r"plugin 'rr'.*parameters\.every"):
        round_robin.create("rr", {"every": 2}, PluginContext())


@pytest.mark.parametrize(
    ("rounds", "expected"),
    [
        # Sorted order a < b < c, wrapping after c; the list order plays no part.
        ([["a", "b", "c"]] * 4, ["a", "b", "c", "a"]),
        (
            [["c", "a", "b"], ["b", "c", "a"], ["a", "c", "b"], ["c", "b", "a"]],
            ["a", "b", "c", "a"],
        ),
        # b leaves after being picked: the next id above b is c.
        ([["a", "b", "c"], ["a", "b", "c"], ["a", "c"]], ["a", "b", "c"]),
        # bb joins after b was picked: it is the next id above b, then c.
        (
            [["a", "b", "c"], ["a", "b", "c"], ["a", "b", "bb", "c"], ["a", "b", "bb", "c"]],
            ["a", "b", "bb", "c"],
        ),
        # The last picked (c) leaves while being the highest: wrap to the lowest.
        ([["a", "b", "c"]] * 3 + [["a", "b"]], ["a", "b", "c", "a"]),
        # One candidate: always it.
        ([["solo"]] * 3, ["solo", "solo", "solo"]),
    ],
)
def test_cycles_by_worker_id(rounds: list[list[str]], expected: list[str]) -> None:
    picker = round_robin.create("rr", {}, PluginContext())
    assert picks(picker, rounds) == expected


def test_each_model_and_stage_has_its_own_turn() -> None:
    picker = round_robin.create("rr", {}, PluginContext())
    ids = ["a", "b", "c"]
    assert picks(picker, [ids], Stage.PREFILL) == ["a"]
    # Decode has not picked yet, so it starts at a too rather than continuing at b.
    assert picks(picker, [ids], Stage.DECODE) == ["a"]
    assert picks(picker, [ids], Stage.PREFILL) == ["b"]
    other_model = request(model="other")
    assert picker.pick(other_model, scored(*ids), CycleState())[0].worker_id == "a"


def test_ignores_scores_and_reports_its_reason() -> None:
    picker = round_robin.create("rr", {}, PluginContext())
    candidates = [ScoredEndpoint(endpoint("a"), 0.0), ScoredEndpoint(endpoint("b"), 9.0)]
    chosen, reason = picker.pick(request(), candidates, CycleState())
    assert (chosen.worker_id, reason) == ("a", "round-robin")


def test_runs_in_a_scheduler() -> None:
    scheduler = scheduler_from(
        [round_robin],
        {
            "plugins": [{"type": "round-robin-picker", "name": "rr"}],
            "profiles": [{"name": "default", "plugins": [{"pluginRef": "rr"}]}],
            "defaultProfile": "default",
        },
    )
    candidates = [endpoint("w2"), endpoint("w1")]
    decisions = [scheduler.schedule(request(), candidates) for _ in range(3)]
    assert [d.endpoint.worker_id for d in decisions] == ["w1", "w2", "w1"]
    assert {d.reason for d in decisions} == {"round-robin"}
    # No scorers in the profile: every candidate the picker chose among totals 0.
    assert decisions[0].scores == {"w1": 0.0, "w2": 0.0}
