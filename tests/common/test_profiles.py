"""Packaged latency profiles: loading, validation and calibration sanity."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from triskel.common.latency import decode_ms, prefill_ms
from triskel.common.profiles import LatencyProfile, ModelGeometry, list_profiles, load_profile

H100_BYTES = 85.52e9  # 81,559 MiB as the driver reports an H100-80GB


def test_list_profiles_names_the_packaged_files() -> None:
    assert list_profiles() == [
        "deepseek-v2-lite-ep-h100",
        "llama-3.1-8b-h100",
        "llama-3.1-8b-l4",
        "qwen2.5-32b-2xh100",
    ]


@pytest.mark.parametrize(
    ("name", "kv_bytes_per_token", "num_gpus"),
    [
        # 32 layers x 8 KV heads x 128 dims x (K and V) x 2 bytes (BF16)
        ("llama-3.1-8b-h100", 32 * 8 * 128 * 2 * 2, 1),
        ("llama-3.1-8b-l4", 32 * 8 * 128 * 2 * 2, 1),
        # 64 layers x 8 KV heads x 128 dims x 2 x 2 bytes
        ("qwen2.5-32b-2xh100", 64 * 8 * 128 * 2 * 2, 2),
    ],
)
def test_load_profile(name: str, kv_bytes_per_token: int, num_gpus: int) -> None:
    profile = load_profile(name)
    assert profile.name == name
    assert profile.geometry.kv_bytes_per_token == kv_bytes_per_token
    assert profile.num_gpus == num_gpus
    assert profile.block_size_tokens == 16
    assert profile.sources


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=re.escape("deepseek-v2-lite-ep-h100, llama-3.1-8b-h100")):
        load_profile("gpt-5-on-a-toaster")


@pytest.mark.parametrize("name", ["llama-3.1-8b-h100", "qwen2.5-32b-2xh100"])
def test_kv_capacity_fits_the_gpus(name: str) -> None:
    profile = load_profile(name)
    kv_bytes = profile.kv_capacity_tokens * profile.geometry.kv_bytes_per_token
    # The KV pool sits inside 90% of the GPUs' memory (vLLM's default utilisation).
    assert kv_bytes < 0.9 * H100_BYTES * profile.num_gpus


def test_llama_8b_h100_is_in_the_published_range() -> None:
    profile = load_profile("llama-3.1-8b-h100")
    # Published figures for an 8B model on one H100: prefill roughly 10-20k tokens/s,
    # a batch-1 decode step 6-8 ms, growing with batch and context.
    for num_tokens in (1024, 8192):
        tokens_per_s = num_tokens / (prefill_ms(profile.prefill, num_tokens) / 1000)
        assert 10_000 <= tokens_per_s <= 20_000
    assert 6.0 <= decode_ms(profile.decode, 1000, 1) <= 8.0
    assert decode_ms(profile.decode, 64 * 2000, 64) > decode_ms(profile.decode, 64 * 500, 64)


def test_llama_8b_l4_is_in_the_published_range() -> None:
    profile = load_profile("llama-3.1-8b-l4")
    # The KV pool sits inside 90% of the L4's 24.15e9 bytes, beside 16.06e9 of weights.
    assert profile.kv_capacity_tokens * 131_072 + 16.06e9 < 0.9 * 24.15e9
    # An 8B BF16 model on one L4 decodes a lone stream at roughly 12-16 tokens/s (it reads
    # 16 GB of weights per step at 300 GB/s) and prefills ~2-3k tokens/s.
    assert 12.0 <= 1000 / decode_ms(profile.decode, 1000, 1) <= 16.0
    assert 2_000 <= 1024 / (prefill_ms(profile.prefill, 1024) / 1000) <= 3_000
    # Every request of the Azure conversation trace fits (the longest is 14,089 tokens).
    assert profile.max_context_tokens >= 14_089


@pytest.mark.parametrize("name", list_profiles())
def test_a_replica_takes_a_minute_or_two_to_start(name: str) -> None:
    assert 30.0 <= load_profile(name).startup_s <= 300.0


def test_the_32b_deployment_is_slower_per_token_than_the_8b() -> None:
    small, large = load_profile("llama-3.1-8b-h100"), load_profile("qwen2.5-32b-2xh100")
    assert prefill_ms(large.prefill, 2048) > prefill_ms(small.prefill, 2048)
    assert decode_ms(large.decode, 2048, 1) > decode_ms(small.decode, 2048, 1)


def _profile_data(**changes: Any) -> dict[str, Any]:
    data = load_profile("llama-3.1-8b-h100").model_dump()
    data.update(changes)
    return data


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError, match="kv_capcity_tokens"):
        LatencyProfile.model_validate(_profile_data(kv_capcity_tokens=1))


@pytest.mark.parametrize(
    "changes",
    [
        {"num_gpus": 0},
        {"kv_capacity_tokens": -16},
        {"sources": []},
        {"prefill": {"a_ms": -1.0, "b_ms_per_token": 0.0, "c_ms_per_token2": 0.0}},
    ],
)
def test_invalid_values_are_rejected(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        LatencyProfile.model_validate(_profile_data(**changes))


def test_capacity_below_one_block_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"kv_capacity_tokens \(8\) < block_size_tokens"):
        LatencyProfile.model_validate(_profile_data(kv_capacity_tokens=8))


def test_profiles_are_frozen() -> None:
    geometry = ModelGeometry(num_layers=1, num_kv_heads=1, head_dim=1, dtype_bytes=2)
    with pytest.raises(ValidationError):
        geometry.num_layers = 2
