"""queue-scorer: llm-d's (maxQ − q)/(maxQ − minQ) over the candidates' waiting queues."""

from __future__ import annotations

import pytest

from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.plugins import max_score, queue_scorer
from triskel.router.scheduling.registry import PluginConfigError
from triskel.router.scheduling.types import ActiveLoad, CycleState

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


def test_requests_sent_since_the_last_report_are_ignored_as_llm_d_ships_it() -> None:
    scorer = queue_scorer.create("queue", {}, PluginContext())
    sent = ActiveLoad(num_requests=3, num_unreported_requests=3)
    candidates = [endpoint("a", waiting=1, active=sent), endpoint("b", waiting=2)]
    assert scorer.score(request(), candidates, CycleState()) == [1.0, 0.0]


def test_count_unreported_adds_the_requests_sent_since_the_last_report() -> None:
    scorer = queue_scorer.create("queue", {"countUnreported": True}, PluginContext())
    # a: 1 waiting + 3 sent since = 4; b: 2; c: 0 + 1 sent since = 1. max 4, min 1.
    candidates = [
        endpoint("a", waiting=1, active=ActiveLoad(3, 0, 0, 3, 0)),
        endpoint("b", waiting=2),
        endpoint("c", active=ActiveLoad(1, 0, 0, 1, 0)),
    ]
    assert scorer.score(request(), candidates, CycleState()) == pytest.approx([0.0, 2 / 3, 1.0])


def test_ten_picks_between_two_reports_spread_with_count_unreported() -> None:
    """The herding it exists for: every pick reads the same report; the picked worker's
    count goes up as the router's ClusterView counts a send."""
    for count_unreported, expected_spread in ((False, 1), (True, 4)):
        scheduler = scheduler_from(
            [queue_scorer, max_score],
            {
                "plugins": [
                    {"type": "queue-scorer", "parameters": {"countUnreported": count_unreported}},
                    {"type": "max-score-picker"},
                ],
                "profiles": [
                    {
                        "name": "prefill",
                        "plugins": [
                            {"pluginRef": "queue-scorer", "weight": 1},
                            {"pluginRef": "max-score-picker"},
                        ],
                    }
                ],
            },
        )
        # w0 reported the shortest queue; the report stays the same for all ten picks.
        waiting = {"w0": 0, "w1": 1, "w2": 1, "w3": 1}
        sent = dict.fromkeys(waiting, 0)
        for _ in range(10):
            candidates = [
                endpoint(w, waiting=q, active=ActiveLoad(sent[w], 0, 0, sent[w], 0))
                for w, q in waiting.items()
            ]
            sent[scheduler.schedule(request(), candidates).endpoint.worker_id] += 1
        assert sum(1 for n in sent.values() if n) == expected_spread, sent
