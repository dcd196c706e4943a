"""kv-utilization-scorer: 1 − kv_usage, absolute rather than relative."""

from __future__ import annotations

import pytest

from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.plugins import kv_utilization, max_score
from triskel.router.scheduling.registry import PluginConfigError
from triskel.router.scheduling.types import ActiveLoad, CycleState, Stage

from support.scheduling import endpoint, request, scheduler_from


def test_unknown_parameter_is_refused_naming_plugin_and_field() -> None:
    with pytest.raises(PluginConfigError, match=r"plugin 'kv'.*parameters\.threshold"):
        kv_utilization.create("kv", {"threshold": 0.8}, PluginContext())


@pytest.mark.parametrize(
    ("usages", "expected"),
    [
        ([0.0, 0.25, 1.0], [1.0, 0.75, 0.0]),
        # All busy stays low: the score is not rescaled across candidates.
        ([0.9, 0.9], [0.1, 0.1]),
        ([], []),
    ],
)
def test_scores(usages: list[float], expected: list[float]) -> None:
    scorer = kv_utilization.create("kv", {}, PluginContext())
    candidates = [endpoint(f"w{i}", kv_usage=u) for i, u in enumerate(usages)]
    assert scorer.score(request(), candidates, CycleState()) == pytest.approx(expected)


def test_out_of_range_reports_are_clamped_by_the_framework() -> None:
    scheduler = scheduler_from(
        [kv_utilization, max_score],
        {
            "plugins": [{"type": "kv-utilization-scorer"}, {"type": "max-score-picker"}],
            "profiles": [
                {
                    "name": "decode",
                    "plugins": [
                        {"pluginRef": "kv-utilization-scorer"},
                        {"pluginRef": "max-score-picker"},
                    ],
                }
            ],
        },
    )
    decision = scheduler.schedule(
        request(stage=Stage.DECODE),
        [endpoint("over", kv_usage=1.2), endpoint("half", kv_usage=0.5)],
    )
    # 1 − 1.2 = −0.2 clamps to 0; 1 − 0.5 = 0.5.
    assert decision.endpoint.worker_id == "half"
    assert decision.scores == pytest.approx({"over": 0.0, "half": 0.5})


def test_count_unreported_adds_the_blocks_sent_since_the_last_report() -> None:
    on = kv_utilization.create("kv", {"countUnreported": True}, PluginContext())
    off = kv_utilization.create("kv", {}, PluginContext())
    # a: 25% used + 100 of 1,000 blocks sent since; b: a worker that reports no block
    # count (a vLLM worker without cache config metrics): nothing to add.
    candidates = [
        endpoint("a", kv_usage=0.25, num_kv_blocks=1000, active=ActiveLoad(2, 0, 0, 2, 100)),
        endpoint("b", kv_usage=0.5, active=ActiveLoad(1, 0, 0, 1, 40)),
    ]
    assert on.score(request(), candidates, CycleState()) == pytest.approx([0.65, 0.5])
    assert off.score(request(), candidates, CycleState()) == pytest.approx([0.75, 0.5])
