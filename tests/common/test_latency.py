"""The step-latency model, checked against hand-computed values."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from triskel.common.latency import decode_ms, decode_step_ms, encode_ms, prefill_ms, step_ms
from triskel.common.profiles import (
    DecodeCoefficients,
    EncodeCoefficients,
    LatencyProfile,
    PrefillCoefficients,
    load_profile,
)

PREFILL = PrefillCoefficients(a_ms=10.0, b_ms_per_token=0.5, c_ms_per_token2=0.001)
DECODE = DecodeCoefficients(a_ms=5.0, b_ms_per_context_token=0.01, c_ms_per_seq=0.2)
ENCODE = EncodeCoefficients(a_ms=2.0, b_ms_per_token=0.1, pixels_per_token_side=28)


@pytest.fixture
def profile() -> LatencyProfile:
    base = load_profile("llama-3.1-8b-h100").model_dump()
    base.update(prefill=PREFILL.model_dump(), decode=DECODE.model_dump())
    return LatencyProfile.model_validate(base)


@pytest.mark.parametrize(
    ("num_tokens", "expected_ms"),
    [
        (0, 0.0),  # nothing to prefill: no forward pass
        (1, 10.0 + 0.5 + 0.001),
        (100, 10.0 + 50.0 + 10.0),  # a + b*100 + c*100^2
        (1000, 10.0 + 500.0 + 1000.0),  # the quadratic term now dominates
    ],
)
def test_prefill_ms(num_tokens: int, expected_ms: float) -> None:
    assert prefill_ms(PREFILL, num_tokens) == pytest.approx(expected_ms)


@pytest.mark.parametrize(
    ("context_tokens", "batch_size", "expected_ms"),
    [
        (0, 0, 0.0),  # empty batch
        (100, 1, 5.0 + 1.0 + 0.2),
        (1000, 4, 5.0 + 10.0 + 0.8),  # a + b*1000 + c*4
    ],
)
def test_decode_ms(context_tokens: int, batch_size: int, expected_ms: float) -> None:
    assert decode_ms(DECODE, context_tokens, batch_size) == pytest.approx(expected_ms)


@pytest.mark.parametrize(("num_tokens", "expected_ms"), [(0, 0.0), (144, 2.0 + 14.4)])
def test_encode_ms(num_tokens: int, expected_ms: float) -> None:
    assert encode_ms(ENCODE, num_tokens) == pytest.approx(expected_ms)


@pytest.mark.parametrize(
    "call",
    [
        lambda: prefill_ms(PREFILL, -1),
        lambda: decode_ms(DECODE, -1, 1),
        lambda: decode_ms(DECODE, 1, -1),
        lambda: encode_ms(ENCODE, -5),
    ],
)
def test_negative_counts_are_rejected(call: Callable[[], float]) -> None:
    with pytest.raises(ValueError, match=">= 0"):
        call()


def test_empty_step_is_free(profile: LatencyProfile) -> None:
    assert step_ms(profile, [], []) == 0.0
    assert step_ms(profile, [(0, 0)], []) == 0.0


def test_step_of_one_prompt_equals_prefill(profile: LatencyProfile) -> None:
    assert step_ms(profile, [(100, 0)], []) == pytest.approx(prefill_ms(PREFILL, 100))


def test_step_of_decodes_only_equals_decode(profile: LatencyProfile) -> None:
    assert step_ms(profile, [], [300, 700]) == pytest.approx(decode_ms(DECODE, 1000, 2))


@pytest.mark.parametrize("seed", range(20))
def test_a_decode_step_from_totals_is_step_ms_to_the_last_bit(seed: int) -> None:
    # The engine prices most steps from the batch's context total; simulated runs must
    # not change, so the float result must be identical, not approximately equal.
    rng = random.Random(seed)
    profile = load_profile("llama-3.1-8b-h100")
    lens = [rng.randrange(1, 130_000) for _ in range(rng.randrange(1, 300))]
    assert decode_step_ms(profile, sum(lens), len(lens)) == step_ms(profile, (), lens)


def test_mixed_step_pays_the_fixed_cost_once(profile: LatencyProfile) -> None:
    # max(a_prefill 10, a_decode 5) + b_p*100 + c_p*100^2 + b_d*1000 + c_d*2
    expected = 10.0 + 50.0 + 10.0 + 10.0 + 0.4
    assert step_ms(profile, [(100, 0)], [500, 500]) == pytest.approx(expected)


def test_chunked_prefill_costs_one_shot_plus_fixed_cost_per_extra_step(
    profile: LatencyProfile,
) -> None:
    chunks = [(40, 0), (40, 40), (20, 80)]
    chunked = sum(step_ms(profile, [chunk], []) for chunk in chunks)
    # Attention: 40*40 + 40*(40+80) + 20*(20+160) = 10,000 = 100^2, exactly one shot's.
    assert chunked == pytest.approx(prefill_ms(PREFILL, 100) + 2 * PREFILL.a_ms)


def test_a_continuing_chunk_costs_more_than_a_fresh_one(profile: LatencyProfile) -> None:
    # The same 100 new tokens attend to 1,000 earlier tokens: c * 100 * (100 + 2000) more.
    extra = step_ms(profile, [(100, 1000)], []) - step_ms(profile, [(100, 0)], [])
    assert extra == pytest.approx(0.001 * 100 * 2000)


@pytest.mark.parametrize("smaller, larger", [(1, 2), (100, 101), (4096, 8192)])
def test_prefill_grows_with_tokens(smaller: int, larger: int) -> None:
    assert prefill_ms(PREFILL, smaller) < prefill_ms(PREFILL, larger)


@pytest.mark.parametrize(
    ("smaller", "larger"),
    [((100, 1), (200, 1)), ((100, 1), (100, 2)), ((0, 1), (0, 256))],
)
def test_decode_grows_with_context_and_batch(
    smaller: tuple[int, int], larger: tuple[int, int]
) -> None:
    assert decode_ms(DECODE, *smaller) < decode_ms(DECODE, *larger)


def test_step_rejects_negative_inputs(profile: LatencyProfile) -> None:
    with pytest.raises(ValueError, match="prefill_chunks"):
        step_ms(profile, [(-1, 0)], [])
    with pytest.raises(ValueError, match="decode_context_lens"):
        step_ms(profile, [], [5, -1])
