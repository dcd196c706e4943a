"""KV cache tiers: GPU memory and the host-memory tier behind it, and what a host hit is worth.

An engine with a host tier keeps the blocks its GPU cache evicts in host DRAM (as
LMCache, SGLang's HiCache, vLLM's CPU offloading and Mooncake Store do) and, when a
prompt's prefix continues there, copies them back over the host link instead of
recomputing them. A copy is not free: at PCIe speed it is cheap next to a prefill, over
a slow link it can cost more than recomputing (SGLang users measured a storage tier
slower than recompute), so both the engine's load-or-recompute choice and the routers'
weight for a host hit come from one comparison here, of the link's copy time against
the profile's own prefill cost. Pure functions, no I/O: the engine, the router's
scorers and the simulator call the same ones.
"""

from __future__ import annotations

import enum

from triskel.common.profiles import LatencyProfile


class KvMedium(enum.Enum):
    """Where a worker holds a cached block (vLLM's KV events call it the medium)."""

    GPU = "gpu"
    HOST = "host"


def load_ms_per_token(profile: LatencyProfile) -> float | None:
    """Milliseconds to copy one token's KV from the host tier into GPU memory; None when
    the profile names no host link (no host tier can serve it)."""
    link = profile.host_link
    if link is None:
        return None
    return profile.geometry.kv_bytes_per_token / (link.load_gb_per_s * 1e9) * 1e3


def load_ms(profile: LatencyProfile, num_tokens: int) -> float:
    """Copying `num_tokens` tokens' KV back from the host tier (ValueError: no host link)."""
    per_token = load_ms_per_token(profile)
    if per_token is None:
        raise ValueError(f"profile {profile.name}: host_link is not set, so nothing loads")
    return per_token * num_tokens


def recompute_ms(profile: LatencyProfile, num_tokens: int, num_context_tokens: int) -> float:
    """What prefilling `num_tokens` tokens after `num_context_tokens` cached ones adds to
    a step: the linear and attention terms of the prefill model (the step's fixed cost
    is paid either way)."""
    prefill = profile.prefill
    return prefill.b_ms_per_token * num_tokens + prefill.c_ms_per_token2 * (
        num_tokens * (num_tokens + 2 * num_context_tokens)
    )


def should_load(profile: LatencyProfile, num_tokens: int, num_context_tokens: int) -> bool:
    """Whether copying `num_tokens` tokens back beats recomputing them (the engine's choice)."""
    if num_tokens <= 0 or profile.host_link is None:
        return False
    return load_ms(profile, num_tokens) < recompute_ms(profile, num_tokens, num_context_tokens)


def host_hit_weight(profile: LatencyProfile | None) -> float:
    """What a block held in the host tier is worth to a prefix scorer, against 1 for a
    block in GPU memory: the share of its recompute time a load saves, at the linear
    prefill cost (longer contexts only make recomputing dearer, so this errs low).
    0 without a host link, or when the link is slower than recomputing.

    Worked example, Llama-3.1-8B on H100 (llama-3.1-8b-h100.yaml): 131,072 KV bytes
    per token over a 50 GB/s link = 0.0026 ms per token; recompute 0.047 ms per token:
    weight 1 - 0.0026 / 0.047 = 0.94. Over a 1 GB/s link it would cost 0.131 ms: 0.
    """
    if profile is None:
        return 0.0
    per_token = load_ms_per_token(profile)
    recompute = profile.prefill.b_ms_per_token
    if per_token is None or recompute <= 0:
        return 0.0
    return max(0.0, 1.0 - per_token / recompute)
