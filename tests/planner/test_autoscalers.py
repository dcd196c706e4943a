"""Scaling policies by name, and the targets an operator would give the HPA and KPA."""

from __future__ import annotations

import pytest

from triskel.common.profiles import load_profile
from triskel.planner.autoscalers import (
    AUTOSCALERS,
    AibrixKpa,
    DynamoPlanner,
    HpaQueue,
    LlmdSloKeda,
    TriskelPlanner,
    build_autoscaler,
    operator_targets,
)
from triskel.planner.planner import Observation, PlannerConfig, StageObservation, StageSpec
from triskel.planner.sizing import Lengths

from .test_sizing import profile

CONFIG = PlannerConfig(ttft_slo_ms=300.0, tpot_slo_ms=20.0)
PREFILL = StageSpec("p", "prefill", profile(), 1, 8)
DECODE = StageSpec("d", "decode", profile(), 1, 8)
INPUTS = Lengths.of([1000] * 10)
OUTPUTS = Lengths.of([100] * 10)


def test_targets_are_what_one_replica_sustains_within_the_slo() -> None:
    # Prefill: every prompt takes 100 ms, so within a 300 ms TTFT a replica may queue
    # (300 − 100) / 100 = 2 prompts behind the one it runs: queue 2, concurrency 3.
    # Decode: a step is 10 ms + 0.1 ms per sequence, so a 20 ms TPOT allows
    # (20 − 10) / 0.1 = 100 sequences; the KV cache (441,808 tokens × 0.9 / 1,100 per
    # sequence = 361) and max_num_seqs (256) allow more: 100. Anything queued at a
    # decode replica means it is full: queue target 1.
    targets = operator_targets(CONFIG, (PREFILL, DECODE), INPUTS, OUTPUTS)
    assert targets["p"].queue == pytest.approx(2.0)
    assert targets["p"].concurrency == pytest.approx(3.0)
    assert targets["d"].queue == 1.0
    assert targets["d"].concurrency == 100.0


def test_every_name_builds_its_law_with_its_shipped_interval() -> None:
    built = {
        name: build_autoscaler(name, CONFIG, (PREFILL, DECODE), INPUTS, OUTPUTS)
        for name in AUTOSCALERS
    }
    assert isinstance(built["triskel"], TriskelPlanner)
    assert isinstance(built["hpa-queue"], HpaQueue)
    assert isinstance(built["aibrix-kpa"], AibrixKpa)
    assert isinstance(built["dynamo"], DynamoPlanner)
    assert isinstance(built["llm-d"], LlmdSloKeda)
    intervals = {name: policy.interval_s for name, policy in built.items()}
    assert intervals == {
        "triskel": 15.0,
        "hpa-queue": 15.0,
        "aibrix-kpa": 10.0,
        "dynamo": 180.0,
        "llm-d": 15.0,
    }


def test_dynamo_needs_a_prefill_and_a_decode_pool_and_unknown_names_are_refused() -> None:
    unified = StageSpec("u", "unified", profile(), 1, 8)
    with pytest.raises(ValueError, match="one prefill and one decode"):
        build_autoscaler("dynamo", CONFIG, (unified,), INPUTS, OUTPUTS)
    with pytest.raises(ValueError, match="unknown policy 'keda'; known: triskel"):
        build_autoscaler("keda", CONFIG, (PREFILL,), INPUTS, OUTPUTS)


def test_a_policy_keeps_its_state_between_intervals() -> None:
    # The HPA's scale-down takes the highest recommendation of its last 300 s: after a
    # queue of 8 per replica asked for 4 replicas at t=0, an empty queue at t=15 keeps 4.
    hpa = build_autoscaler("hpa-queue", CONFIG, (DECODE,), INPUTS, OUTPUTS)
    busy = Observation(0.0, 1.0, INPUTS, OUTPUTS, {"d": StageObservation(1, queued=8.0)})
    (first,) = hpa.step(busy)
    assert first.desired == 5  # ceil(1 × 8 / 1) = 8, at most max(2 × 1, 1 + 4) = 5
    quiet = Observation(15.0, 1.0, INPUTS, OUTPUTS, {"d": StageObservation(5, queued=0.0)})
    (second,) = hpa.step(quiet)
    assert second.desired == 5


def test_the_l4_profile_gives_the_decode_batch_its_kv_cache_allows() -> None:
    # Azure-like lengths (1,155 in, 211 out): a step of 71 + (5.67e-4 × 1,260.5 + 0.22)
    # = 71 + 0.935 ms per sequence allows (100 − 71) / 0.935 = 31 sequences at a 100 ms
    # TPOT; the cache 0.9 × 31,890 / 1,366 = 21.0: the cache decides, 21.
    l4 = load_profile("llama-3.1-8b-l4")
    config = PlannerConfig(ttft_slo_ms=2000.0, tpot_slo_ms=100.0)
    decode = StageSpec("d", "decode", l4, 1, 32)
    lengths_in = Lengths(1155.0, 1155.0**2, 2734.0)
    lengths_out = Lengths(211.0, 211.0**2, 424.0)
    assert operator_targets(config, (decode,), lengths_in, lengths_out)["d"].concurrency == 21.0
