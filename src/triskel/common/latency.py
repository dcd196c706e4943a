"""The step-latency model: how long a (modelled) GPU forward pass takes. Pure functions.

Prefill and decode follow the forms DistServe fits to measured latencies
(Zhong et al., OSDI 2024): prefill of L tokens `a + b·L + c·L²` (linear layers
scale with L, causal attention with L²), a decode step `a + b·Σcontext + c·batch`
(weights read once per step, each context token's KV read once, a small cost
per sequence). Coefficients come from a `LatencyProfile`.

A continuous-batching engine runs prefill chunks and decodes in ONE forward
pass; `step_ms` combines them as follows:

* the fixed cost is paid once per pass: `max(prefill.a, decode.a)` over the
  kinds present (both stand for reading the weights and launching kernels);
* linear terms add: `prefill.b·Σnew` + `decode.b·Σcontext` + `decode.c·num_decodes`;
* the quadratic term is per prefill chunk: a chunk of `new` tokens after
  `before` already-computed tokens costs `prefill.c·new·(new + 2·before)`.
  Summed over the chunks of one prompt this is exactly `prefill.c·L²`
  (because (Σnᵢ)² = Σnᵢ² + 2·Σnᵢ·beforeᵢ), so chunking a long prompt costs the
  same attention as one shot and only adds the per-step fixed cost.

An empty step takes 0 ms.
"""

from __future__ import annotations

from collections.abc import Sequence

from triskel.common.profiles import (
    DecodeCoefficients,
    EncodeCoefficients,
    LatencyProfile,
    PrefillCoefficients,
)


def _check_count(name: str, value: int) -> None:
    if value < 0:
        raise ValueError(f"{name}: must be >= 0, got {value}")


def prefill_ms(coeffs: PrefillCoefficients, num_tokens: int) -> float:
    """One-shot prefill of `num_tokens` tokens (0 tokens: 0 ms)."""
    _check_count("num_tokens", num_tokens)
    if num_tokens == 0:
        return 0.0
    return (
        coeffs.a_ms
        + coeffs.b_ms_per_token * num_tokens
        + coeffs.c_ms_per_token2 * (num_tokens * num_tokens)
    )


def decode_ms(coeffs: DecodeCoefficients, context_tokens_total: int, batch_size: int) -> float:
    """One decode step for `batch_size` sequences holding `context_tokens_total` tokens."""
    _check_count("context_tokens_total", context_tokens_total)
    _check_count("batch_size", batch_size)
    if batch_size == 0:
        return 0.0
    return (
        coeffs.a_ms
        + coeffs.b_ms_per_context_token * context_tokens_total
        + coeffs.c_ms_per_seq * batch_size
    )


def encode_ms(coeffs: EncodeCoefficients, num_tokens: int) -> float:
    """Encoding images that yield `num_tokens` embedding tokens (0 tokens: 0 ms)."""
    _check_count("num_tokens", num_tokens)
    if num_tokens == 0:
        return 0.0
    return coeffs.a_ms + coeffs.b_ms_per_token * num_tokens


def decode_step_ms(profile: LatencyProfile, context_tokens_total: int, num_decodes: int) -> float:
    """`step_ms` of a pass that only decodes `num_decodes` >= 1 sequences, from their
    context total: the engine's most common step, without a list of context lengths.
    The same float operations as `step_ms`, so the same result to the last bit."""
    decode = profile.decode
    total_ms = (
        decode.b_ms_per_context_token * context_tokens_total + decode.c_ms_per_seq * num_decodes
    )
    return max(0.0, decode.a_ms) + total_ms


def step_ms(
    profile: LatencyProfile,
    prefill_chunks: Sequence[tuple[int, int]],
    decode_context_lens: Sequence[int],
) -> float:
    """One mixed forward pass (see the module docstring for how the terms combine).

    `prefill_chunks` holds `(num_new_tokens, num_context_tokens_before)` per
    prefilling sequence; `decode_context_lens` the context length of every
    decoding sequence (including the token fed this step).
    """
    prefill = profile.prefill
    decode = profile.decode
    fixed_ms = 0.0
    total_ms = 0.0
    if prefill_chunks:
        num_new_total = 0
        quadratic_tokens2 = 0
        for num_new, num_before in prefill_chunks:
            if num_new < 0 or num_before < 0:
                raise ValueError(
                    f"prefill_chunks: counts must be >= 0, got ({num_new}, {num_before})"
                )
            num_new_total += num_new
            quadratic_tokens2 += num_new * (num_new + 2 * num_before)
        if num_new_total > 0:
            fixed_ms = prefill.a_ms
            total_ms += prefill.b_ms_per_token * num_new_total
            total_ms += prefill.c_ms_per_token2 * quadratic_tokens2
    if decode_context_lens:
        if min(decode_context_lens) < 0:
            raise ValueError(f"decode_context_lens: must be >= 0, got {min(decode_context_lens)}")
        context_total = sum(decode_context_lens)
        num_decodes = len(decode_context_lens)
        fixed_ms = max(fixed_ms, decode.a_ms)
        total_ms += decode.b_ms_per_context_token * context_total
        total_ms += decode.c_ms_per_seq * num_decodes
    return fixed_ms + total_ms
