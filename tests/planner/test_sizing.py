"""Replica counts from the queueing models, worked out by hand in the comments."""

from __future__ import annotations

import math

import pytest

from triskel.common.profiles import LatencyProfile, load_profile
from triskel.planner.sizing import (
    Lengths,
    decode_batch,
    decode_replicas,
    prefill_replicas,
    prefill_ttft_ms,
)


def profile(prefill_a_ms: float = 100.0, decode_a_ms: float = 10.0) -> LatencyProfile:
    """Round numbers: a prefill takes `prefill_a_ms` whatever its length, a decode step
    `decode_a_ms` + 0.1 ms per sequence."""
    base = load_profile("llama-3.1-8b-h100")
    return base.model_copy(
        update={
            "prefill": base.prefill.model_copy(
                update={"a_ms": prefill_a_ms, "b_ms_per_token": 0.0, "c_ms_per_token2": 0.0}
            ),
            "decode": base.decode.model_copy(
                update={"a_ms": decode_a_ms, "b_ms_per_context_token": 0.0, "c_ms_per_seq": 0.1}
            ),
        }
    )


INPUTS = Lengths.of([1000] * 10)
OUTPUTS = Lengths.of([100] * 10)


def test_lengths_summarise_samples() -> None:
    lengths = Lengths.of([100, 200, 300, 400, 500, 600, 700, 800, 900, 1000])
    assert lengths.mean == 550.0
    assert lengths.mean_square == 385_000.0
    assert lengths.quantile == 900.0  # the 9th of 10: 90% are at or below it
    with pytest.raises(ValueError, match="at least one"):
        Lengths.of([])


def test_prefill_ttft_includes_the_queue_not_only_throughput() -> None:
    # S = 100 ms for every prompt, 8 req/s, TTFT p90 SLO 300 ms.
    # One replica: ρ = 8 × 0.1 = 0.8 (throughput alone says one is enough);
    #   E[Wq] = λ E[S²] / 2(1 − ρ) = 8 × 0.01 / 0.4 = 0.2 s; the p90 wait is
    #   E[Wq]/ρ × ln(ρ/0.1) = 0.25 × ln 8 = 519.9 ms, so TTFT p90 = 619.9 ms > 300.
    # Two: ρ = 0.4, E[Wq] = 4 × 0.01 / 1.2 = 33.3 ms, p90 wait = 83.3 × ln 4 = 115.5 ms,
    #   TTFT p90 = 215.5 ms <= 300: two replicas.
    model = profile()
    ttft, rho = prefill_ttft_ms(model, 8.0, INPUTS, 1, 0.9, 0.0)
    assert rho == pytest.approx(0.8)
    assert ttft == pytest.approx(100 + 250 * math.log(8))
    estimate = prefill_replicas(model, 8.0, INPUTS, ttft_slo_ms=300.0)
    assert estimate.replicas == 2
    assert estimate.ttft_ms == pytest.approx(100 + 250 / 3 * math.log(4))
    assert estimate.meets_slo


def test_prefill_with_little_load_has_no_wait_at_the_quantile() -> None:
    # 0.5 req/s: ρ = 0.05 <= 0.1, so at least 90% of prompts do not wait at all.
    ttft, rho = prefill_ttft_ms(profile(), 0.5, INPUTS, 1, 0.9, 20.0)
    assert ttft == pytest.approx(120.0)
    assert rho == pytest.approx(0.05)


def test_an_unreachable_ttft_is_reported_not_sized_to_the_maximum() -> None:
    # A prompt alone takes 100 ms against a 50 ms SLO: no replica count meets it, so the
    # wait is held to one prompt's own time (TTFT <= 200 ms). At 1.5 req/s one replica
    # has ρ = 0.15, E[Wq] = 1.5 × 0.01 / (2 × 0.85) = 8.82 ms and a p90 wait of
    # 8.82 / 0.15 × ln(1.5) = 23.8 ms: TTFT 123.8 ms, one replica.
    estimate = prefill_replicas(profile(), 1.5, INPUTS, ttft_slo_ms=50.0)
    assert not estimate.meets_slo
    assert estimate.replicas == 1
    assert estimate.ttft_ms == pytest.approx(100 + 0.015 / 1.7 / 0.15 * 1000 * math.log(1.5))


def test_a_quantile_prompt_over_the_slo_sizes_for_the_mean_prompt() -> None:
    # S(L) = 1 ms per token. Prompts of 100 tokens, one in ten of 3,000: the p90 prompt
    # (3,000 tokens, 3 s) misses a 2 s SLO on an idle replica, so sizing for it would
    # ask for a queue of zero at any count (the old answer: dozens of replicas). Sized
    # for the mean prompt (390 tokens, 390 ms) instead: at 2 req/s one replica has
    # ρ = 2 × 0.39 = 0.78 and a long p90 wait; two have ρ = 0.39 and
    # E[S²] = 0.39² + 1² × Var L (Var L = 0.1 × 3000² + 0.9 × 100² − 390² = 756,900 ms²
    # → E[S²] = 0.9090 s²), E[Wq] = 1 × 0.909 / (2 × 0.61) = 745 ms, p90 wait =
    # 745 / 0.39 × ln 3.9 = 2,600 ms: too long; three: ρ = 0.26, E[Wq] = 0.667 × 0.909 /
    # 1.48 = 409.6 ms, p90 wait = 409.6 / 0.26 × ln 2.6 = 1,505 ms → TTFT 1,895 ms: three.
    model = profile()
    model = model.model_copy(
        update={"prefill": model.prefill.model_copy(update={"a_ms": 0.0, "b_ms_per_token": 1.0})}
    )
    inputs = Lengths(mean=390.0, mean_square=0.9 * 100**2 + 0.1 * 3000**2, quantile=3000.0)
    estimate = prefill_replicas(model, 2.0, inputs, ttft_slo_ms=2000.0)
    assert not estimate.meets_slo
    assert estimate.replicas == 3
    assert estimate.ttft_ms == pytest.approx(1895, rel=0.01)


def test_ttft_quantile_is_over_the_length_mix_not_the_longest_prompt() -> None:
    # S(L) = 1 ms per token; nine prompts in ten of 100 tokens, one of 1,900 (so the
    # 95th-percentile point is 1,900: points = 9 × 100 and 1 × 1,900). TTFT SLO 2,000 ms at
    # p90. The long prompt alone takes 1,900 ms: adding the p90 wait to the p90 prompt
    # would leave a 100 ms budget for the wait. Over the mix, the long prompt may miss
    # (it is the 10% allowed) as long as the short ones do not: at 2 req/s, one replica
    # has ρ = 2 × 0.28 = 0.56 (E[S] = 0.9 × 100 + 0.1 × 1,900 = 280 ms), E[S²] =
    # 0.9 × 0.01 + 0.1 × 3.61 = 0.37 s², E[Wq] = 2 × 0.37 / 0.88 = 840.9 ms; a short
    # prompt misses when its wait exceeds 1,900 ms: 0.56 × exp(−1900 × 0.56 / 840.9) =
    # 0.158, the long one when its wait exceeds 100 ms: 0.56 × exp(−0.0666) = 0.524;
    # P(miss) = 0.9 × 0.158 + 0.1 × 0.524 = 0.195 > 0.1. Two replicas: ρ = 0.28,
    # E[Wq] = 1 × 0.37 / 1.44 = 256.9 ms; short: 0.28 × exp(−1900 × 0.28 / 256.9) =
    # 0.0353, long: 0.28 × exp(−0.109) = 0.251; P(miss) = 0.9 × 0.0353 + 0.1 × 0.251 =
    # 0.057 <= 0.1: two replicas. Adding the 1,900-token prompt to the wait's p90 instead
    # needs that p90 under 100 ms: E[Wq]/ρ × ln(ρ/0.1) is 507 ms with three replicas,
    # 258 ms with four, 84 ms with five (ρ = 0.112, E[Wq] = 0.4 × 0.37 / 1.776): five.
    model = profile()
    model = model.model_copy(
        update={"prefill": model.prefill.model_copy(update={"a_ms": 0.0, "b_ms_per_token": 1.0})}
    )
    inputs = Lengths.of([100] * 9 + [1900])
    assert inputs.points == (100.0,) * 9 + (1900.0,)
    estimate = prefill_replicas(model, 2.0, inputs, ttft_slo_ms=2000.0)
    assert estimate.replicas == 2
    assert estimate.meets_slo
    assert estimate.ttft_ms <= 2000.0
    summary_only = Lengths(inputs.mean, inputs.mean_square, quantile=1900.0)
    assert prefill_replicas(model, 2.0, summary_only, ttft_slo_ms=2000.0).replicas == 5


def test_decode_sized_at_a_quantile_covers_the_batchs_spread() -> None:
    # 10 req/s of 100 output tokens on one replica: Little's law's mean batch is
    # B = 1 × 10 / (1 − 1 × 0.1) = 11.11 (work λ·O = 1 slot-second per ms of step), a
    # step of 10 + 0.1 × 11.11 = 11.11 ms: the mean fits an 11.3 ms TPOT. The batch is
    # Poisson around 11.11; its p90 is about 11.11 + 1.2816 × √11.11 = 15.38 sequences,
    # a step of 11.54 ms: over. Two replicas: B = 0.5 × 10 / 0.95 = 5.263, p90 5.263 +
    # 1.2816 × 2.294 = 8.203, step 10.82 ms: two.
    model = profile()
    outputs = Lengths.of([100] * 10)
    assert decode_replicas(model, 10.0, INPUTS, outputs, tpot_slo_ms=11.3).replicas == 1
    at_p90 = decode_replicas(model, 10.0, INPUTS, outputs, tpot_slo_ms=11.3, quantile=0.9)
    assert at_p90.replicas == 2
    assert at_p90.batch == pytest.approx(5.263, abs=0.001)
    assert at_p90.tpot_ms == pytest.approx(10.82, abs=0.01)


def test_decode_batch_is_littles_law() -> None:
    # 10 req/s × 100 tokens each: B = 1 × 10 / (1 − 1 × 0.1) = 11.1 sequences, a step of
    # 10 + 0.1 × 11.1 = 11.1 ms, and indeed 10 req/s × 100 × 11.1 ms = 11.1 in flight.
    batch = decode_batch(profile(), 10.0, INPUTS, OUTPUTS, 1)
    assert batch == pytest.approx(100 / 9)


def test_decode_replicas_for_tpot_and_max_num_seqs() -> None:
    # 80 req/s. One replica: 8 × 10 / (1 − 0.8) = 400 sequences > max_num_seqs 256.
    # Two: 4 × 10 / 0.6 = 66.7 sequences, step 16.7 ms <= 20 ms: two.
    # With a 15 ms SLO, three: 2.67 × 10 / 0.733 = 36.4 sequences, step 13.6 ms.
    model = profile()
    assert decode_replicas(model, 80.0, INPUTS, OUTPUTS, tpot_slo_ms=20.0).replicas == 2
    estimate = decode_replicas(model, 80.0, INPUTS, OUTPUTS, tpot_slo_ms=15.0)
    assert estimate.replicas == 3
    assert estimate.tpot_ms == pytest.approx(10 + 0.1 * (80 / 3 * 0.1 * 10) / (1 - 80 / 3 * 0.01))


def test_decode_replicas_for_kv_memory() -> None:
    # 1,100 tokens a sequence; a replica holds 90% of 441,808 tokens = 361 sequences,
    # more than max_num_seqs: make the cache small (11,000 tokens → 9 sequences at 90%).
    model = profile().model_copy(update={"kv_capacity_tokens": 11_000})
    # 10 req/s: one replica would hold 11.1 sequences (> 9); two hold 5.3 each.
    estimate = decode_replicas(model, 10.0, INPUTS, OUTPUTS, tpot_slo_ms=100.0)
    assert estimate.replicas == 2
    assert estimate.kv_fraction <= 0.9


def test_a_lone_sequence_over_the_tpot_slo_is_reported() -> None:
    estimate = decode_replicas(profile(decode_a_ms=30.0), 1.0, INPUTS, OUTPUTS, 20.0)
    assert not estimate.meets_slo
    assert estimate.replicas == 1
