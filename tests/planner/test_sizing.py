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
    # A prompt alone takes 100 ms against a 50 ms SLO: no replica count meets it; the
    # planner gets the count that removes the queue at p90 (ρ <= 0.1 → 2 at 1.5 req/s).
    estimate = prefill_replicas(profile(), 1.5, INPUTS, ttft_slo_ms=50.0)
    assert not estimate.meets_slo
    assert estimate.replicas == 2
    assert estimate.ttft_ms == pytest.approx(100.0)


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
