"""least-load-scorer: weighted mean of min-max scaled queue, running and token loads."""

from __future__ import annotations

import pytest

from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.plugins import least_load, max_score
from triskel.router.scheduling.registry import PluginConfigError
from triskel.router.scheduling.types import ActiveLoad, CycleState, Endpoint, Stage

from support.scheduling import endpoint, request, scheduler_from

# queue (waiting):           a 0,  b 4,  c 2     → (4 − q)/4     = 1, 0, 0.5
# running max(report, own):  a 2,  b 6,  c 4     → (6 − r)/4     = 1, 0, 0.5
# tokens max(report, own):   a 100, b 300, c 0   → (300 − t)/300 = 2/3, 0, 1
CANDIDATES = [
    endpoint("a", running=2, tokens_in_flight=100),
    endpoint("b", waiting=4, active=ActiveLoad(num_requests=6, num_prefill_tokens=300)),
    endpoint("c", waiting=2, running=4),
]


def test_unknown_parameter_is_refused_naming_plugin_and_field() -> None:
    with pytest.raises(PluginConfigError, match=r"plugin 'load'.*parameters\.kvWeight"):
        least_load.create("load", {"kvWeight": 1}, PluginContext())


def test_negative_weight_is_refused_naming_the_field() -> None:
    with pytest.raises(PluginConfigError, match=r"plugin 'load'.*parameters\.runningWeight.*-1"):
        least_load.create("load", {"runningWeight": -1}, PluginContext())


def test_all_zero_weights_are_refused() -> None:
    zero = {"queueWeight": 0, "runningWeight": 0, "tokensWeight": 0}
    with pytest.raises(PluginConfigError, match=r"plugin 'load'.*queueWeight"):
        least_load.create("load", zero, PluginContext())


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        # Defaults 0.4/0.3/0.3: a .4 + .3 + .3·2/3 = .9; b 0; c .4·.5 + .3·.5 + .3 = .65.
        ({}, [0.9, 0.0, 0.65]),
        # Queue only: the queue column itself.
        ({"queueWeight": 1, "runningWeight": 0, "tokensWeight": 0}, [1.0, 0.0, 0.5]),
        # 2/1/1 normalises to .5/.25/.25: a .5 + .25 + .25·2/3; c .25 + .125 + .25.
        (
            {"queueWeight": 2, "runningWeight": 1, "tokensWeight": 1},
            [0.75 + 0.25 * 2 / 3, 0.0, 0.625],
        ),
    ],
)
def test_scores(parameters: dict[str, float], expected: list[float]) -> None:
    scorer = least_load.create("load", parameters, PluginContext())
    assert scorer.score(request(), CANDIDATES, CycleState()) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        # The router has sent 5 the report does not show yet: 5 running beats the report's 3.
        (
            [endpoint("x", active=ActiveLoad(num_requests=5)), endpoint("y", running=3)],
            [0.7, 1.0],
        ),
        # Tokens: the router's pending 50 vs the report's 80 → 80 counts for x.
        (
            [
                endpoint("x", tokens_in_flight=80, active=ActiveLoad(num_prefill_tokens=50)),
                endpoint("y", tokens_in_flight=60),
            ],
            [0.7, 1.0],
        ),
    ],
)
def test_takes_the_larger_of_router_and_worker_counts(
    candidates: list[Endpoint], expected: list[float]
) -> None:
    # Only one column differs, so the loser gets the other two weights: 0.4 + 0.3.
    scorer = least_load.create("load", {}, PluginContext())
    assert scorer.score(request(), candidates, CycleState()) == pytest.approx(expected)


@pytest.mark.parametrize(
    "candidates",
    [
        [endpoint("solo", waiting=3, running=9, tokens_in_flight=500)],
        [endpoint("a", waiting=1), endpoint("b", waiting=1)],
    ],
)
def test_all_equal_scores_one(candidates: list[Endpoint]) -> None:
    scorer = least_load.create("load", {}, PluginContext())
    assert scorer.score(request(), candidates, CycleState()) == pytest.approx(
        [1.0] * len(candidates)
    )


def test_no_candidates() -> None:
    scorer = least_load.create("load", {}, PluginContext())
    assert scorer.score(request(), [], CycleState()) == []


def test_runs_in_a_scheduler() -> None:
    scheduler = scheduler_from(
        [least_load, max_score],
        {
            "plugins": [
                {"type": "least-load-scorer", "name": "load"},
                {"type": "max-score-picker"},
            ],
            "profiles": [
                {
                    "name": "unified",
                    "plugins": [{"pluginRef": "load"}, {"pluginRef": "max-score-picker"}],
                }
            ],
        },
    )
    decision = scheduler.schedule(request(stage=Stage.UNIFIED), CANDIDATES)
    assert decision.endpoint.worker_id == "a"
    assert decision.scores == pytest.approx({"a": 0.9, "b": 0.0, "c": 0.65})
