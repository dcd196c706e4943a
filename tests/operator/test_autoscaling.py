"""The pure part of autoscaling: planner settings, stages, the observation, what to patch."""

from __future__ import annotations

import math
from typing import Any

import pytest

from triskel.common.api import WorkerPoolSpec
from triskel.common.resources import AutoscalingMode, ServingGraphSpec
from triskel.operator.autoscaling import (
    AutoscalingProblem,
    PoolReading,
    RouterLoad,
    format_number,
    observation,
    planner_config,
    pool_actions,
    router_load,
    stage_specs,
)
from triskel.planner.planner import Decision
from triskel.planner.router_metrics import MetricsError, ModelWindow, Scrape
from triskel.planner.sizing import Lengths
from triskel.router.metrics import RouterMetrics

URL = "http://router.triskel:8080/metrics"


def graph(slo: dict[str, Any] | None = None, **autoscaling: Any) -> ServingGraphSpec:
    return ServingGraphSpec.model_validate(
        {
            "model": "m",
            "pools": ["prefill", "decode"],
            "slo": slo or {},
            "autoscaling": {"metricsUrl": URL, **autoscaling},
        }
    )


def pool(role: str, minimum: int = 1, maximum: int = 4, **fields: Any) -> WorkerPoolSpec:
    return WorkerPoolSpec.model_validate(
        {"role": role, "model": "m", "replicas": {"min": minimum, "max": maximum}, **fields}
    )


def test_planner_config_takes_the_graphs_slos_and_its_autoscaling_fields() -> None:
    spec = graph(
        {"ttftMs": 500, "tpotMs": 40, "attainment": 0.95},
        intervalS=30,
        scaleDownWindowS=600,
        scaleDownCooldownS=90,
        gpuBudget=16,
    )
    assert spec.autoscaling is not None
    config = planner_config(spec, spec.autoscaling)
    assert (config.ttft_slo_ms, config.tpot_slo_ms) == (500, 40)
    # 95% of requests must meet the SLO: TTFT is sized at its 95th percentile.
    assert config.ttft_quantile == 0.95
    assert (config.scale_down_window_s, config.scale_down_cooldown_s) == (600, 90)
    assert (config.gpu_budget, config.interval_s) == (16, 30)


def test_unset_fields_keep_the_planners_defaults() -> None:
    spec = graph({"attainment": 1.0})
    assert spec.autoscaling is not None
    config = planner_config(spec, spec.autoscaling)
    # The start-up time decides the window and cooldown (None); 15 s like the HPA.
    assert (config.scale_down_window_s, config.scale_down_cooldown_s) == (None, None)
    assert (config.gpu_budget, config.interval_s) == (None, 15.0)
    # Every request within the SLO has no finite quantile to size at: p99 stands for it.
    assert config.ttft_quantile == 0.99


def test_each_pool_is_a_stage_bounded_by_its_replicas() -> None:
    stages = stage_specs(
        "default/chat",
        {
            "prefill": pool("prefill", 2, 6),
            "decode": pool("decode", profile={"name": "llama-3.1-8b-l4", "kvCapacityTokens": 4096}),
        },
    )
    prefill, decode = stages
    assert (prefill.name, prefill.role, prefill.min_replicas, prefill.max_replicas) == (
        "prefill",
        "prefill",
        2,
        6,
    )
    assert prefill.profile.name == "llama-3.1-8b-h100"  # the pool's default profile
    assert decode.profile.name == "llama-3.1-8b-l4"
    # The pool's KV override is what its workers run with, so the planner sizes with it.
    assert decode.profile.kv_capacity_tokens == 4096


def test_mock_workers_are_sized_at_the_speed_they_run() -> None:
    fast = pool("decode", profile={"timeScale": 0.1})
    real = pool("decode", profile={"timeScale": 0.1}, engine={"type": "vllm"})
    (at_full_speed,) = stage_specs("ns/chat", {"d": pool("decode")})
    (mock,) = stage_specs("ns/chat", {"d": fast})
    (vllm,) = stage_specs("ns/chat", {"d": real})
    # A mock step takes a tenth of the profile's time: the router measures that.
    assert mock.profile.decode.a_ms == pytest.approx(at_full_speed.profile.decode.a_ms / 10)
    assert mock.profile.prefill.b_ms_per_token == pytest.approx(
        at_full_speed.profile.prefill.b_ms_per_token / 10
    )
    # A real engine ignores timeScale, so the planner does too.
    assert vllm.profile == at_full_speed.profile


@pytest.mark.parametrize(
    ("spec", "reason", "fragment"),
    [
        (pool("encode"), "UnsupportedRole", "WorkerPool p: spec.role (encode)"),
        (pool("decode", profile={"name": "gpt-9"}), "UnknownProfile", "unknown profile 'gpt-9'"),
        (
            pool("decode", profile={"timeScale": 0}),
            "InstantWorkers",
            "WorkerPool p: spec.profile.timeScale (0)",
        ),
    ],
)
def test_a_pool_the_planner_cannot_size_is_a_problem_naming_it(
    spec: WorkerPoolSpec, reason: str, fragment: str
) -> None:
    with pytest.raises(AutoscalingProblem) as raised:
        stage_specs("default/chat", {"p": spec})
    assert raised.value.reason == reason
    assert raised.value.message.startswith("ServingGraph default/chat: ")
    assert fragment in raised.value.message


WINDOW = ModelWindow(
    rate_rps=4.0,
    inputs=Lengths(1000, 1e6, 1000),
    outputs=Lengths(200, 4e4, 200),
    ttft_ms=350.0,
    tpot_ms=30.0,
)


def test_the_observation_counts_desired_replicas_and_those_not_ready_yet() -> None:
    desired_three = pool("prefill").model_copy(
        update={"replicas": pool("prefill").replicas.model_copy(update={"desired": 3})}
    )
    readings = {
        "prefill": PoolReading(desired_three, ready_replicas=1),
        # No desired: the pool runs min (1); more ready than desired (a scale-in draining).
        "decode": PoolReading(pool("decode"), ready_replicas=2),
    }
    seen = observation(100.0, WINDOW, readings, RouterLoad(in_flight=7.0))
    assert (seen.time_s, seen.rate_rps, seen.inputs, seen.outputs) == (
        100.0,
        4.0,
        WINDOW.inputs,
        WINDOW.outputs,
    )
    prefill, decode = seen.stages["prefill"], seen.stages["decode"]
    assert (prefill.replicas, prefill.starting) == (3, 2)
    assert (decode.replicas, decode.starting) == (1, 0)
    assert (prefill.ttft_ms, decode.tpot_ms) == (350.0, 30.0)
    # Without per-stage gauges, in-flight requests are per model: two stages cannot tell
    # whose they are, and no stage sees a queue.
    assert prefill.running == decode.running == 0.0
    assert prefill.queued == decode.queued == 0.0


def test_each_pool_sees_its_stages_queue_shared_by_ready_replicas() -> None:
    readings = {
        # Two prefill pools of one graph, 3 and 1 ready replicas: 3/4 and 1/4 of the queue.
        "prefill-a": PoolReading(pool("prefill"), ready_replicas=3),
        "prefill-b": PoolReading(pool("prefill"), ready_replicas=1),
        "decode": PoolReading(pool("decode"), ready_replicas=2),
    }
    load = RouterLoad(in_flight=50.0, stages={"prefill": (8.0, 4.0), "decode": (1.0, 30.0)})
    stages = observation(0.0, WINDOW, readings, load).stages
    assert (stages["prefill-a"].queued, stages["prefill-a"].running) == (6.0, 3.0)
    assert (stages["prefill-b"].queued, stages["prefill-b"].running) == (2.0, 1.0)
    assert (stages["decode"].queued, stages["decode"].running) == (1.0, 30.0)


def test_a_single_pool_runs_every_request_in_flight() -> None:
    only = {"u": PoolReading(pool("unified"), 1)}
    assert observation(0.0, WINDOW, only, RouterLoad(in_flight=7.0)).stages["u"].running == 7.0
    assert observation(0.0, WINDOW, only, RouterLoad()).stages["u"].running == 0.0


def test_the_routers_load_is_read_from_its_own_exposition() -> None:
    metrics = RouterMetrics()
    metrics.track_request("m", "http")
    metrics.track_request("m", "http")
    metrics.track_request("other", "grpc")
    metrics.watch_stage_requests(
        lambda: {("m", "prefill"): (5, 1), ("m", "decode"): (0, 2), ("other", "unified"): (9, 9)}
    )
    scrape = Scrape(0.0, metrics.render()[0].decode())
    load = router_load(scrape, "m")
    assert load.in_flight == 2.0
    assert load.stages == {"prefill": (5.0, 1.0), "decode": (0.0, 2.0)}
    assert router_load(scrape, "absent") == RouterLoad()
    with pytest.raises(MetricsError):
        router_load(Scrape(0.0, "<html>not metrics</html>\n"), "m")


def decision(current: int, desired: int) -> Decision:
    numbers: dict[str, float | str] = {
        "observed_rps": 4.2,
        "prefill_replicas": 3,
        "predicted_ttft_ms": math.inf,
        "predictor": "holt",
    }
    return Decision("prefill", current, desired, "scale up: 3 needed for 4.20 req/s", numbers)


def test_a_decision_that_changes_the_count_is_a_scale_patch_a_record_and_an_event() -> None:
    (action,) = pool_actions("chat", "triskel", [decision(1, 3)], "2026-01-02T03:04:05Z")
    assert (action.pool, action.desired, action.scale_to) == ("prefill", 3, 3)
    assert action.record == {
        "graph": "chat",
        "policy": "triskel",
        "currentReplicas": 1,
        "desiredReplicas": 3,
        "reason": "scale up: 3 needed for 4.20 req/s",
        "decidedAt": "2026-01-02T03:04:05Z",
        "numbers": {
            "observed_rps": "4.2",
            "prefill_replicas": "3",
            "predicted_ttft_ms": "inf",
            "predictor": "holt",
        },
    }
    assert action.event == (
        "1 -> 3 replicas by triskel (ServingGraph chat): scale up: 3 needed for 4.20 req/s; "
        "observed_rps=4.2, prefill_replicas=3, predicted_ttft_ms=inf, predictor=holt"
    )


def test_in_recommend_mode_a_change_is_recorded_for_keda_or_an_hpa_to_act_on() -> None:
    (action,) = pool_actions(
        "chat", "triskel", [decision(1, 3)], "2026-01-02T03:04:05Z", AutoscalingMode.RECOMMEND
    )
    assert (action.desired, action.scale_to, action.event) == (3, None, None)
    assert action.record["desiredReplicas"] == 3


def test_a_decision_keeping_the_count_is_recorded_only() -> None:
    (action,) = pool_actions("chat", "triskel", [decision(3, 3)], "2026-01-02T03:04:05Z")
    assert (action.scale_to, action.event) == (None, None)
    assert action.record["desiredReplicas"] == action.record["currentReplicas"] == 3


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (3, "3"),  # counts stay counts
        (2.0, "2"),  # a whole float reads as a count
        (0.123456, "0.1235"),  # four significant digits
        (12345.678, "1.235e+04"),
        (math.inf, "inf"),  # JSON has no infinity: why numbers are strings
        ("holt→ewma", "holt→ewma"),
    ],
)
def test_numbers_are_formatted_for_status_and_events(value: float | str, shown: str) -> None:
    assert format_number(value) == shown
