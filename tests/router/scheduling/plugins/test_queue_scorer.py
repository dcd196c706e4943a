"""queue-scorer: llm-d's (maxQ − q)/(maxQ − minQ) over the candidates' waiting queues."""

from __future__ import annotations

import pytest

from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.plugins import max_score, queue_scorer
from triskel.router.scheduling.registry import PluginConfigError
from triskel.router.scheduling.types import CycleState

from support.scheduling import endpoint, request, scheduler_from


def test_unknown_parameter_is_refused_naming_plugin_and_field() -> None:
    with pytest.raises(PluginConfigError, match=r"plugin 'queue'.*parameters\.maxQueue"):
        queue_scorer.create("queue", {"maxQueue": 64}, PluginContext())


@pytest.mark.parametrize(
    ("queues", "expected"),
    [
        # max 10, min 0: (10 − q)/10.
        ([0, 5, 10], [1.0, 0.5, 0.0]),
        # max 7, min 3: (7 − q)/4.
        ([7, 3, 4], [0.0, 1.0, 0.75]),
        # All equal: the queue tells nothing, everyone 1.
        ([4, 4, 4], [1.0, 1.0, 1.0]),
        # One candidate is trivially all-equal.
        ([9], [1.0]),
        ([], []),
    ],
)
def test_scores(queues: list[int], expected: list[float]) -> None:
    scorer = queue_scorer.create("queue", {}, PluginContext())
    candidates = [endpoint(f"w{i}", waiting=q) for i, q in enumerate(queues)]
    assert scorer.score(request(), candidates, CycleState()) == pytest.approx(expected)


def test_running_requests_do_not_count() -> None:
    scorer = queue_scorer.create("queue", {}, PluginContext())
    candidates = [endpoint("a", waiting=1, running=50), endpoint("b", waiting=2)]
    assert scorer.score(request(), candidates, CycleState()) == [1.0, 0.0]


def test_runs_in_a_scheduler() -> None:
    scheduler = scheduler_from(
        [queue_scorer, max_score],
        {
            "plugins": [{"type": "queue-scorer"}, {"type": "max-score-picker"}],
            "profiles": [
                {
                    "name": "prefill",
                    "plugins": [
                        {"pluginRef": "queue-scorer", "weight": 2},
                        {"pluginRef": "max-score-picker"},
                    ],
                }
            ],
        },
    )
    decision = scheduler.schedule(
        request(), [endpoint("busy", waiting=8), endpoint("idle"), endpoint("mid", waiting=4)]
    )
    assert decision.endpoint.worker_id == "idle"
    # Weight 2 × (8 − q)/8.
    assert decision.scores == pytest.approx({"busy": 0.0, "idle": 2.0, "mid": 1.0})
