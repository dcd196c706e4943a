"""summarize: attainment, nearest-rank percentiles, throughput, hit ratio, imbalance."""

from __future__ import annotations

import pytest

from triskel.simulator.metrics import (
    SloTargets,
    load_imbalance,
    nearest_rank,
    summarize,
)
from triskel.simulator.records import InstanceRecord, RequestRecord, RunResult

SLO = SloTargets(ttft_s=1.0, tpot_s=0.1)


def record(
    index: int,
    *,
    arrival_s: float = 0.0,
    ttft_s: float | None = 0.5,
    decode_s: float = 0.45,
    num_output_tokens: int = 10,
    num_input_tokens: int = 100,
    num_cached_tokens: int = 0,
    kv_bytes_moved: int = 0,
) -> RequestRecord:
    """A request answered `ttft_s` after arrival, then `decode_s` more to the last token."""
    first_token_s = None if ttft_s is None else arrival_s + ttft_s
    return RequestRecord(
        index=index,
        arrival_s=arrival_s,
        num_input_tokens=num_input_tokens,
        num_output_tokens=num_output_tokens,
        first_token_s=first_token_s,
        finish_s=None if first_token_s is None else first_token_s + decode_s,
        num_cached_tokens=num_cached_tokens,
        kv_bytes_moved=kv_bytes_moved,
    )


def run(
    *requests: RequestRecord, instances: list[InstanceRecord] | None = None, duration_s: float = 10
) -> RunResult:
    return RunResult(
        policy="p",
        rate_scale=1.0,
        requests=list(requests),
        instances=instances or [],
        duration_s=duration_s,
    )


@pytest.mark.parametrize(
    ("percent", "expected"),
    [
        # ceil(0.5 * 10) = 5th smallest.
        (50, 5.0),
        # ceil(0.9 * 10) = 9th.
        (90, 9.0),
        # ceil(0.99 * 10) = 10th: with 10 values p99 is the maximum.
        (99, 10.0),
        (100, 10.0),
        # Rank 0 is clamped to the first value.
        (0, 1.0),
        # ceil(0.51 * 10) = 6: nearest-rank rounds up, never interpolates.
        (51, 6.0),
    ],
)
def test_nearest_rank_of_one_to_ten(percent: float, expected: float) -> None:
    values = [float(v) for v in (7, 3, 10, 1, 5, 2, 9, 4, 8, 6)]  # unsorted on purpose
    assert nearest_rank(values, percent) == expected


@pytest.mark.parametrize(("values", "percent"), [([], 50), ([1.0], -1), ([1.0], 101)])
def test_nearest_rank_refuses_empty_values_and_bad_percents(
    values: list[float], percent: float
) -> None:
    with pytest.raises(ValueError, match="nearest_rank"):
        nearest_rank(values, percent)


@pytest.mark.parametrize(
    ("requests", "expected"),
    [
        # TTFT 0.5 <= 1 and TPOT 0.45 / 9 = 0.05 <= 0.1: met.
        ([record(0)], 1.0),
        # TTFT exactly at the target still meets it (<=).
        ([record(0, ttft_s=1.0)], 1.0),
        # TTFT 1.5 > 1: missed, though TPOT is fine.
        ([record(0, ttft_s=1.5)], 0.0),
        # TPOT 1.8 / 9 = 0.2 > 0.1: missed, though TTFT is fine.
        ([record(0, decode_s=1.8)], 0.0),
        # One met, one failed: the failure counts as a miss, 1 of 2.
        ([record(0), record(1, ttft_s=None)], 0.5),
        # A one-token answer has TPOT 0: only TTFT decides.
        ([record(0, num_output_tokens=1, decode_s=0.0)], 1.0),
        # 3 of 4 met.
        ([record(0), record(1), record(2), record(3, ttft_s=2.0)], 0.75),
    ],
)
def test_slo_attainment_needs_both_targets_and_counts_failures(
    requests: list[RequestRecord], expected: float
) -> None:
    assert summarize(run(*requests), SLO).slo_attainment == expected


def test_counts_percentiles_throughput_and_kv() -> None:
    requests = [
        record(i, arrival_s=float(i), ttft_s=0.1 * (i + 1), kv_bytes_moved=1000) for i in range(10)
    ]
    requests.append(record(10, arrival_s=10.0, ttft_s=None, kv_bytes_moved=500))
    metrics = summarize(run(*requests, duration_s=20.0), SLO)
    assert (metrics.num_requests, metrics.num_finished, metrics.num_failed) == (11, 10, 1)
    # TTFTs 0.1 .. 1.0 over finished requests only: ranks 5, 9, 10.
    assert metrics.ttft is not None
    assert (metrics.ttft.p50_s, metrics.ttft.p90_s, metrics.ttft.p99_s) == pytest.approx(
        (0.5, 0.9, 1.0)
    )
    # Every finished request decodes 9 gaps in 0.45 s.
    assert metrics.tpot is not None and metrics.tpot.p99_s == pytest.approx(0.05)
    # 11 arrivals over 0 .. 10 s: 10 gaps in 10 s.
    assert metrics.request_rate_per_s == pytest.approx(1.0)
    # 10 finished in 20 s; 10 tokens each.
    assert metrics.throughput_requests_per_s == pytest.approx(0.5)
    assert metrics.throughput_output_tokens_per_s == pytest.approx(5.0)
    assert metrics.kv_bytes_moved == 10_500


def test_undefined_numbers_are_none() -> None:
    metrics = summarize(run(record(0, ttft_s=None), duration_s=0.0), SLO)
    # Nothing finished, one arrival, no duration, no instance records.
    assert metrics.ttft is None and metrics.tpot is None
    assert metrics.request_rate_per_s is None
    assert metrics.throughput_requests_per_s is None
    assert metrics.throughput_output_tokens_per_s is None
    assert metrics.load_imbalance is None


def test_prefix_hit_ratio_is_cached_over_prompt_tokens() -> None:
    requests = [
        record(0, num_input_tokens=100, num_cached_tokens=0),
        record(1, num_input_tokens=300, num_cached_tokens=200),
    ]
    # 200 cached of 400 prompt tokens.
    assert summarize(run(*requests), SLO).prefix_hit_ratio == 0.5


def test_empty_run_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"run p at rate scale 1\.0: no requests"):
        summarize(run(), SLO)


@pytest.mark.parametrize(
    ("busy", "expected"),
    [
        # Equal busy times: perfect balance.
        ([("prefill", 2.0), ("prefill", 2.0)], 1.0),
        # max 3 / mean 2.
        ([("prefill", 1.0), ("prefill", 3.0)], 1.5),
        # All idle: nothing to balance, counted as perfect.
        ([("decode", 0.0), ("decode", 0.0)], 1.0),
        # Decode 4 / mean 2.5 = 1.6 is worse than prefill's 1.0; mixing the roles would
        # have given 8 / 4.5.
        ([("prefill", 8.0), ("prefill", 8.0), ("decode", 1.0), ("decode", 4.0)], 1.6),
        # One busy instance of four: max 4 / mean 1.
        ([("both", 4.0), ("both", 0.0), ("both", 0.0), ("both", 0.0)], 4.0),
    ],
)
def test_load_imbalance_is_worst_role_max_over_mean(
    busy: list[tuple[str, float]], expected: float
) -> None:
    instances = [InstanceRecord(f"w{i}", role, busy_s) for i, (role, busy_s) in enumerate(busy)]
    assert load_imbalance(instances) == pytest.approx(expected)
    assert summarize(run(record(0), instances=instances), SLO).load_imbalance == pytest.approx(
        expected
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"ttft_s": 0.0, "tpot_s": 0.1}, "ttft_s"),
        ({"ttft_s": 1.0, "tpot_s": -1.0}, "tpot_s"),
        ({"ttft_s": 1.0, "tpot_s": 0.1, "attainment_target": 1.5}, "attainment_target"),
    ],
)
def test_slo_targets_refuse_bad_values_naming_the_field(
    kwargs: dict[str, float], field: str
) -> None:
    with pytest.raises(ValueError, match=f"SloTargets: {field}"):
        SloTargets(**kwargs)
