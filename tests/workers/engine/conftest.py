"""Shared fixtures: a profile with round coefficients so expected latencies are easy to check."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from triskel.common.profiles import LatencyProfile, load_profile
from triskel.workers.engine.core import EngineConfig, EngineCore

BLOCK_SIZE = 4


@pytest.fixture
def simple_profile() -> LatencyProfile:
    data = load_profile("llama-3.1-8b-h100").model_dump()
    data.update(
        name="simple",
        max_context_tokens=4096,
        kv_capacity_tokens=64 * BLOCK_SIZE,
        block_size_tokens=BLOCK_SIZE,
        max_num_batched_tokens=16,
        max_num_seqs=4,
        prefill={"a_ms": 10.0, "b_ms_per_token": 0.5, "c_ms_per_token2": 0.001},
        decode={"a_ms": 5.0, "b_ms_per_context_token": 0.01, "c_ms_per_seq": 0.2},
    )
    return LatencyProfile.model_validate(data)


@pytest.fixture
def make_core(simple_profile: LatencyProfile) -> Callable[..., EngineCore]:
    """An engine over `simple_profile`; keyword arguments override EngineConfig fields."""

    def make(**overrides: Any) -> EngineCore:
        config = EngineConfig.from_profile(simple_profile, model="test-model")
        return EngineCore(dataclasses.replace(config, **overrides))

    return make
