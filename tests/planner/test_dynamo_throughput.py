"""Dynamo's throughput-mode law (v1.0.0), worked by hand on round numbers.

The profile: a prefill takes 100 ms, so τp(1000 tokens) = 1000 / 0.1 s = 10,000
tokens/s per GPU. A decode step is 10 ms + 0.1 ms per sequence: at a 50 ms ITL the
batch could be 400, but max_num_seqs is 256 (the KV cache holds 420 sequences of
1,050 tokens), so τd = 256 / 35.6 ms = 7,191 tokens/s per GPU.
"""

from __future__ import annotations

import pytest

from triskel.planner.laws.dynamo_throughput import (
    DynamoSettings,
    DynamoState,
    decode_tokens_per_gpu_s,
    prefill_tokens_per_gpu_s,
    step,
)
from triskel.planner.planner import Observation, StageObservation, StageSpec
from triskel.planner.sizing import Lengths

from .test_sizing import profile

PREFILL = StageSpec("prefill", "prefill", profile(), min_replicas=1, max_replicas=16)
DECODE = StageSpec("decode", "decode", profile(), min_replicas=1, max_replicas=16)
CONSTANT = DynamoSettings(itl_slo_ms=50.0, predictor="constant")


def observe(rate_rps: float) -> Observation:
    stages = {"prefill": StageObservation(1), "decode": StageObservation(1)}
    return Observation(0.0, rate_rps, Lengths.of([1000]), Lengths.of([100]), stages)


def test_throughputs_from_the_profile() -> None:
    assert prefill_tokens_per_gpu_s(profile(), 1000) == pytest.approx(10_000)
    assert decode_tokens_per_gpu_s(profile(), 50.0, 1050) == pytest.approx(256 / 0.0356)


@pytest.mark.parametrize(
    ("rate_rps", "expected"),
    [
        # 10 req/s × 180 s = 1,800 requests: prefill 1,800 × 1,000 / 180 = 10,000 tokens/s
        # → 1 replica; decode 1,000 tokens/s → 1.
        (10.0, [1, 1]),
        # 40 req/s: prefill 40,000 tokens/s → 4; decode 4,000 → 1.
        (40.0, [4, 1]),
        # 80 req/s: prefill 8 and decode ceil(8,000 / 7,191) = 2 need 10 GPUs > 8: prefill
        # gets floor(8 × 0.8) = 6, decode the 2 left.
        (80.0, [6, 2]),
    ],
)
def test_replicas_from_token_throughput(rate_rps: float, expected: list[int]) -> None:
    _, decisions = step(PREFILL, DECODE, CONSTANT, DynamoState(), observe(rate_rps))
    assert [d.desired for d in decisions] == expected


def test_no_traffic_skips_the_adjustment() -> None:
    _, decisions = step(PREFILL, DECODE, CONSTANT, DynamoState(), observe(0.0))
    assert [d.desired for d in decisions] == [1, 1]
    assert "skipped" in decisions[0].reason


def test_arima_predicts_the_request_count_once_it_has_five_points() -> None:
    state = DynamoState()
    settings = DynamoSettings(itl_slo_ms=50.0)  # arima, the default
    for rate in (10.0, 20.0, 30.0, 40.0):
        state, decisions = step(PREFILL, DECODE, settings, state, observe(rate))
        # Fewer than five points: the last value (40 req/s → 4 prefill replicas).
    assert decisions[0].desired == 4
    state, decisions = step(PREFILL, DECODE, settings, state, observe(50.0))
    predicted = decisions[0].numbers["predicted_requests"]
    assert isinstance(predicted, float) and predicted > 0
