"""Elastic EP pools, the pure part: the size a decision moves a group to, and how a
step is recorded and told."""

from __future__ import annotations

from typing import Any

import pytest

from triskel.common.api import WorkerPoolSpec
from triskel.common.moe import MoeSpec, nearest_valid_size
from triskel.common.resources import ElasticEpStatus
from triskel.operator.autoscaling import (
    AutoscalingProblem,
    PoolReading,
    RouterLoad,
    observation,
    pool_actions,
    stage_specs,
)
from triskel.operator.elastic_ep import (
    EpStepResult,
    current_ep_size,
    ep_size_bounds,
    ep_target,
    failed_message,
    scaled_message,
    status_patch,
    step_result,
)
from triskel.operator.elastic_ep_convergence import (
    PodToStep,
    converged_message,
    convergence_plan,
    convergence_status,
    ep_size_in_metrics,
    may_converge,
)
from triskel.operator.elastic_ep_steps import http_base_url
from triskel.planner.planner import Decision
from triskel.planner.router_metrics import ModelWindow
from triskel.planner.sizing import Lengths

# 8 experts of 10 bytes, 10 dense bytes, 60 bytes per rank, a KV cache of at least 10
# one-byte tokens: a rank holds at most 4 experts, so only 2..8 ranks fit.
TIGHT = MoeSpec(
    num_experts=8,
    top_k=2,
    expert_bytes=10,
    dense_bytes=10,
    hbm_bytes_per_rank=60,
    kv_bytes_per_token=1,
    min_kv_tokens_per_rank=10,
    rank_start_s=1.0,
    reconfigure_s=1.0,
    interconnect_bytes_per_s=1.0,
    storage_bytes_per_s=1.0,
)


def pool(ep: int = 4, profile: str = "deepseek-v2-lite-ep-h100", **replicas: int) -> WorkerPoolSpec:
    return WorkerPoolSpec.model_validate(
        {
            "role": "unified",
            "model": "m",
            "replicas": {"min": 1, "max": 2, "desired": 1} | replicas,
            "parallelism": {"ep": ep},
            "profile": {"name": profile},
        }
    )


@pytest.mark.parametrize(
    ("desired", "low", "high", "expected"),
    [
        (6.0, 1, 8, 6),  # a valid size: itself
        (1.0, 1, 8, 2),  # 1 rank cannot hold 8 experts here: the nearest that fits
        (20.0, 1, 8, 8),  # above the bounds: the highest
        (4.5, 1, 8, 5),  # halfway: the larger (short of the load costs more)
        (3.0, 5, 7, 5),  # below the bounds: the lowest
    ],
)
def test_the_nearest_valid_size_within_the_bounds(
    desired: float, low: int, high: int, expected: int
) -> None:
    assert nearest_valid_size(TIGHT, desired, low, high) == expected


def test_no_valid_size_in_the_bounds_is_none() -> None:
    assert nearest_valid_size(TIGHT, 1.0, 1, 1) is None


def test_bounds_are_replicas_min_and_max_in_groups_of_ep_ranks() -> None:
    assert ep_size_bounds(pool(ep=4, min=1, max=2)) == (4, 8)
    assert ep_size_bounds(pool(ep=2, min=2, max=3, desired=2)) == (4, 6)


def test_the_current_size_is_the_last_steps_else_parallelism_ep() -> None:
    assert current_ep_size(pool(ep=4), {}) == 4
    assert current_ep_size(pool(ep=4), {"elasticEp": {"size": 6}}) == 6


@pytest.mark.parametrize(
    ("current", "desired_ranks", "is_stepping", "expected"),
    [
        (4, 30, False, 8),  # far more load: the bound, 8
        (4, 6, False, 6),
        (8, 1, False, 4),  # little load: back to the lower bound
        (4, 4, False, None),  # already there: no step
        (4, 30, True, None),  # a step runs: one at a time
    ],
)
def test_the_target_size_steps_one_at_a_time_within_the_bounds(
    current: int, desired_ranks: int, is_stepping: bool, expected: int | None
) -> None:
    moe = TIGHT.model_copy(update={"num_experts": 64, "hbm_bytes_per_rank": 10_000})
    assert ep_target(moe, pool(ep=4), current, desired_ranks, is_stepping) == expected


def test_two_replicas_share_the_desired_ranks() -> None:
    moe = TIGHT.model_copy(update={"num_experts": 64, "hbm_bytes_per_rank": 10_000})
    spec = pool(ep=4, min=1, max=2, desired=2)
    # 12 ranks over 2 groups: 6 each.
    assert ep_target(moe, spec, 4, 12, False) == 6


def test_a_pool_scaled_to_zero_replicas_has_no_group_to_step() -> None:
    assert ep_target(TIGHT, pool(ep=4, min=0, max=2, desired=0), 4, 8, False) is None


def test_an_elastic_pool_is_a_stage_in_ranks() -> None:
    (stage,) = stage_specs("default/chat", {"moe": pool(ep=4, min=1, max=2)})
    assert (stage.min_replicas, stage.max_replicas) == (4, 8)


def test_an_elastic_pool_needs_a_moe_profile() -> None:
    with pytest.raises(AutoscalingProblem) as raised:
        stage_specs("default/chat", {"dense": pool(ep=4, profile="llama-3.1-8b-h100")})
    assert raised.value.reason == "NotMoe"
    assert raised.value.message == (
        "ServingGraph default/chat: WorkerPool dense: spec.parallelism.ep (4) needs a "
        "profile with a `moe:` section; llama-3.1-8b-h100 has none"
    )


def test_the_planner_observes_ranks_of_an_elastic_pool() -> None:
    window = ModelWindow(1.0, Lengths(1, 1, 1), Lengths(1, 1, 1), 10.0, 5.0)
    readings = {"moe": PoolReading(pool(ep=4), ready_replicas=0, ep_size=6)}
    stage = observation(0.0, window, readings, RouterLoad()).stages["moe"]
    assert (stage.replicas, stage.starting) == (6, 6)


def test_an_elastic_pools_decision_is_recorded_and_never_a_scale_patch() -> None:
    decisions = [
        Decision("moe", 4, 8, "scale up", {}),
        Decision("dense", 1, 2, "scale up", {}),
    ]
    moe, dense = pool_actions("chat", "triskel", decisions, "t", elastic=frozenset({"moe"}))
    assert (moe.scale_to, moe.event, moe.record["desiredReplicas"]) == (None, None, 8)
    assert dense.scale_to == 2 and dense.event is not None


def test_a_step_is_read_from_the_mock_workers_answer_and_recorded() -> None:
    answer: dict[str, Any] = {
        "message": "Scaled to 6 data parallel engines",
        "step": {"old_size": 4, "new_size": 6, "experts_moved": 20, "bytes_moved": 9 * 10**9},
    }
    result = step_result(answer, 4, 6, 29.05)
    assert result == EpStepResult(4, 6, 29.05, 9 * 10**9, 20)
    patch = status_patch(result, "2025-01-01T00:00:00Z", ["moe-a", "moe-b"], [])
    # What the CRD's schema holds: the model reads the patch back.
    status = ElasticEpStatus.model_validate(patch["elasticEp"])
    assert status.size == 6 and status.last_step is not None
    assert (status.last_step.from_, status.last_step.to) == (4, 6)
    assert (status.pods_at_size, status.lagging, status.size_unknown) == (2, [], [])
    assert scaled_message("default/chat", result) == (
        "4 -> 6 EP ranks per replica in 29.1 s, 9.00 GB of experts moved "
        "(ServingGraph default/chat)"
    )


def test_a_step_some_pods_failed_keeps_its_target_and_names_the_laggards() -> None:
    result = EpStepResult(4, 8, 30.0, None, None)
    patch = status_patch(result, "t", ["moe-a"], ["moe-c", "moe-b"])
    # 8 is what the pool should serve (moving moe-a back would undo a good step);
    # the two that failed are named, sorted, for the next convergence to retry.
    assert patch["elasticEp"]["size"] == 8
    assert (patch["elasticEp"]["podsAtSize"], patch["elasticEp"]["lagging"]) == (
        1,
        ["moe-b", "moe-c"],
    )
    ElasticEpStatus.model_validate(patch["elasticEp"])
    assert scaled_message("default/chat", result, ["moe-c", "moe-b"]).endswith(
        "bytes moved not reported; not taken by moe-b, moe-c (ServingGraph default/chat)"
    )


def test_vllms_answer_has_no_figures() -> None:
    result = step_result({"message": "Scaled to 6 data parallel engines"}, 4, 6, 31.0)
    assert (result.bytes_moved, result.experts_moved) == (None, None)
    assert "bytes moved not reported" in scaled_message("default/chat", result)


def test_a_failure_names_the_pod_and_the_status() -> None:
    message = failed_message("default/moe", "moe-abc", 4, 6, "HTTP 409: already scaling")
    assert message == (
        "WorkerPool default/moe: pod moe-abc: /scale_elastic_ep 4 -> 6 EP ranks failed: "
        "HTTP 409: already scaling"
    )


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        ({"status": {}}, None),  # no IP yet
        ({"status": {"podIP": "10.0.0.7"}, "spec": {"containers": [{"ports": []}]}}, None),
        (
            {
                "status": {"podIP": "10.0.0.7"},
                "spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8000}]}]},
            },
            "http://10.0.0.7:8000",
        ),
        (
            {
                "status": {"podIP": "fd00::7"},
                "spec": {"containers": [{"ports": [{"name": "http", "containerPort": 8000}]}]},
            },
            "http://[fd00::7]:8000",
        ),
    ],
)
def test_a_pods_http_api_is_found_by_its_port_name(
    pod: dict[str, Any], expected: str | None
) -> None:
    assert http_base_url(pod) == expected


# Convergence: the pods of a pool serving at another EP size than its own.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The mock worker's exposition: one series, labels model_name and engine.
        (
            "# TYPE triskel:ep_size gauge\n"
            'triskel:ep_size{engine="0",model_name="m"} 8.0\n'
            "# TYPE triskel:ep_scaling gauge\n"
            'triskel:ep_scaling{engine="0",model_name="m"} 0.0\n',
            8,
        ),
        # vLLM: its own series, no EP size among them.
        (
            '# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{engine="0"} 3.0\n',
            None,
        ),
        # Two engines at two sizes: no one size to compare.
        ('triskel:ep_size{engine="0"} 4.0\ntriskel:ep_size{engine="1"} 8.0\n', None),
        ("triskel:ep_size 4.5\n", None),  # not a rank count
        ("triskel:ep_size 0\n", None),  # no group
        ("not { an exposition\n", None),
    ],
)
def test_a_pods_ep_size_is_its_triskel_ep_size_gauge(text: str, expected: int | None) -> None:
    assert ep_size_in_metrics(text) == expected


def test_a_pod_started_after_a_step_is_stepped_to_the_pools_size() -> None:
    # moe-b is a replica created after the pool moved to 8: it serves parallelism.ep.
    plan = convergence_plan({"moe-a": 8, "moe-b": 4}, pool_size=8)
    assert plan.to_step == (PodToStep("moe-b", 4),)
    assert (plan.at_size, plan.unknown) == (("moe-a",), ())


def test_a_pod_of_unknown_size_is_left_alone_and_reported() -> None:
    # moe-b's size cannot be read (vLLM): no step on a guess, but the status names it.
    plan = convergence_plan({"moe-a": 8, "moe-b": None}, pool_size=8)
    assert (plan.to_step, plan.unknown) == ((), ("moe-b",))
    patch = convergence_status(plan, stepped=[], failed=[], current={"size": 8})
    assert patch is not None
    assert patch["elasticEp"] == {
        "size": 8,
        "podsAtSize": 1,
        "lagging": [],
        "sizeUnknown": ["moe-b"],
    }
    ElasticEpStatus.model_validate(patch["elasticEp"])


def test_a_pod_of_unknown_size_that_failed_a_step_is_stepped_again() -> None:
    # The status' `lagging` says moe-b did not take the step to 8: known not at size.
    plan = convergence_plan({"moe-a": None, "moe-b": None}, pool_size=8, lagging=["moe-b"])
    assert (plan.to_step, plan.unknown) == ((PodToStep("moe-b", None),), ("moe-a", "moe-b"))
    patch = convergence_status(plan, stepped=["moe-b"], failed=[], current={"lagging": ["moe-b"]})
    assert patch is not None
    # moe-b took it: at size now; moe-a, never called, stays unknown.
    assert patch["elasticEp"]["podsAtSize"] == 1
    assert (patch["elasticEp"]["lagging"], patch["elasticEp"]["sizeUnknown"]) == ([], ["moe-a"])


def test_nothing_to_do_when_every_pod_serves_the_pools_size() -> None:
    plan = convergence_plan({"moe-a": 8, "moe-b": 8}, pool_size=8)
    assert plan.to_step == () and plan.at_size == ("moe-a", "moe-b")
    current = {"size": 8, "podsAtSize": 2, "lagging": [], "sizeUnknown": []}
    assert convergence_status(plan, [], [], current) is None  # no patch every interval
    # A pool never stepped whose pods all serve parallelism.ep has nothing to record.
    assert convergence_status(convergence_plan({"moe-a": 4}, 4), [], [], {}) is None


def test_a_failed_convergence_step_keeps_the_pod_lagging() -> None:
    plan = convergence_plan({"moe-a": 8, "moe-b": 4}, pool_size=8)
    current = {"size": 8, "podsAtSize": 1, "lagging": ["moe-b"], "sizeUnknown": []}
    # The same failure again: the status already says so.
    assert convergence_status(plan, [], ["moe-b"], current) is None
    # It took the size at last: the status says every pod serves 8.
    patch = convergence_status(plan, ["moe-b"], [], current)
    assert patch is not None and patch["elasticEp"]["podsAtSize"] == 2
    assert patch["elasticEp"]["lagging"] == []


@pytest.mark.parametrize(
    ("spec", "is_stepping", "expected"),
    [
        (pool(ep=4), False, True),
        (pool(ep=4), True, False),  # a step of the pool runs: one at a time
        (pool(ep=4, min=0, max=2, desired=0), False, False),  # no replica, no pod
        (pool(ep=1, profile="llama-3.1-8b-h100"), False, False),  # not elastic
    ],
)
def test_no_convergence_while_a_step_of_the_pool_runs(
    spec: WorkerPoolSpec, is_stepping: bool, expected: bool
) -> None:
    assert may_converge(spec, is_stepping) is expected


def test_a_convergence_names_the_pods_it_moved() -> None:
    stepped = [PodToStep("moe-b", 4), PodToStep("moe-c", None)]
    assert converged_message("default/chat", 8, stepped) == (
        "pods moved to the pool's 8 EP ranks per replica: moe-b (4 -> 8), "
        "moe-c (unread -> 8) (ServingGraph default/chat)"
    )
    assert failed_message("default/moe", "moe-c", None, 8, "HTTP 409: busy") == (
        "WorkerPool default/moe: pod moe-c: /scale_elastic_ep unread -> 8 EP ranks failed: "
        "HTTP 409: busy"
    )
