"""Named latency profiles: a model on some hardware, as the mock engine models it.

A profile carries the model's KV geometry, the deployment's KV capacity and
batching limits, and the coefficients of the step-latency model in
`triskel.common.latency` (prefill `a + b·L + c·L²` and decode
`a + b·Σcontext + c·batch`, the forms DistServe fits; Zhong et al., OSDI 2024).
Profiles live as YAML files next to this module (`profiles/<name>.yaml`); each
file cites where every coefficient comes from.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from triskel.common.moe import MoeSpec

_PROFILE_PACKAGE = "triskel.common"
_PROFILE_FOLDER = "profiles"
_PROFILE_SUFFIX = ".yaml"

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


class _Frozen(BaseModel):
    """Immutable, and unknown fields are errors (a typo never falls back to a default)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelGeometry(_Frozen):
    """The attention geometry that sizes a token's KV cache."""

    num_layers: PositiveInt
    num_kv_heads: PositiveInt
    head_dim: PositiveInt
    dtype_bytes: PositiveInt

    @property
    def kv_bytes_per_token(self) -> int:
        """K and V for every layer and KV head (the 2 counts K and V)."""
        return self.num_layers * self.num_kv_heads * self.head_dim * 2 * self.dtype_bytes


class HostLink(_Frozen):
    """The link between host memory and the GPU, for a host KV tier (`common.kv_tiers`)."""

    # Host-to-device copy bandwidth a KV load reaches (pinned memory), in GB/s.
    load_gb_per_s: Annotated[float, Field(gt=0)]


class PrefillCoefficients(_Frozen):
    """Prefill of L new tokens: `a_ms + b_ms_per_token·L + c_ms_per_token2·L²`."""

    a_ms: NonNegativeFloat
    b_ms_per_token: NonNegativeFloat
    c_ms_per_token2: NonNegativeFloat


class DecodeCoefficients(_Frozen):
    """One decode step: `a_ms + b_ms_per_context_token·Σcontext + c_ms_per_seq·batch`."""

    a_ms: NonNegativeFloat
    b_ms_per_context_token: NonNegativeFloat
    c_ms_per_seq: NonNegativeFloat


class EncodeCoefficients(_Frozen):
    """Vision encoding: `a_ms + b_ms_per_token·tokens`.

    An image of W×H pixels yields ceil(W/p)·ceil(H/p) embedding tokens with
    p = `pixels_per_token_side` (28 for Qwen2-VL: 14 px patches merged 2×2).
    """

    a_ms: NonNegativeFloat
    b_ms_per_token: NonNegativeFloat
    pixels_per_token_side: PositiveInt


class LatencyProfile(_Frozen):
    """One deployment (model × hardware) and its calibrated latency model."""

    name: Annotated[str, Field(min_length=1)]
    model: Annotated[str, Field(min_length=1)]
    hardware: Annotated[str, Field(min_length=1)]
    num_gpus: PositiveInt
    geometry: ModelGeometry
    max_context_tokens: PositiveInt
    kv_capacity_tokens: PositiveInt
    block_size_tokens: PositiveInt = 16
    max_num_batched_tokens: PositiveInt
    max_num_seqs: PositiveInt
    # Seconds from a replica's start to ready (model load, engine start): what a scale-up
    # waits for, in the simulator's autoscaling runs and the planner's reasoning.
    startup_s: NonNegativeFloat
    prefill: PrefillCoefficients
    decode: DecodeCoefficients
    encode: EncodeCoefficients
    # Mixture-of-experts models under expert parallelism: the layout and elastic-EP
    # step model (`triskel.common.moe`); None for dense models.
    moe: MoeSpec | None = None
    # The host-to-GPU link a host KV tier loads over; None: no host tier on this hardware.
    host_link: HostLink | None = None
    sources: Annotated[tuple[str, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _check_capacity(self) -> LatencyProfile:
        if self.kv_capacity_tokens < self.block_size_tokens:
            raise ValueError(
                f"profile {self.name}: kv_capacity_tokens ({self.kv_capacity_tokens}) "
                f"< block_size_tokens ({self.block_size_tokens})"
            )
        return self


def as_run(
    profile: LatencyProfile, time_scale: float = 1.0, kv_capacity_tokens: int | None = None
) -> LatencyProfile:
    """The profile as a mock engine runs it: every step `time_scale` times as long, and
    the KV capacity a pool sets (None keeps the profile's). What a planner sizes with, so
    it sizes in the wall-clock time the router measures TTFT and TPOT in."""
    update: dict[str, object] = {}
    if kv_capacity_tokens is not None:
        update["kv_capacity_tokens"] = kv_capacity_tokens
    if time_scale != 1.0:
        prefill, decode = profile.prefill, profile.decode
        update["prefill"] = prefill.model_copy(
            update={
                "a_ms": prefill.a_ms * time_scale,
                "b_ms_per_token": prefill.b_ms_per_token * time_scale,
                "c_ms_per_token2": prefill.c_ms_per_token2 * time_scale,
            }
        )
        update["decode"] = decode.model_copy(
            update={
                "a_ms": decode.a_ms * time_scale,
                "b_ms_per_context_token": decode.b_ms_per_context_token * time_scale,
                "c_ms_per_seq": decode.c_ms_per_seq * time_scale,
            }
        )
    return profile.model_copy(update=update) if update else profile


def list_profiles() -> list[str]:
    """Names of the packaged profiles, sorted."""
    folder = resources.files(_PROFILE_PACKAGE).joinpath(_PROFILE_FOLDER)
    return sorted(
        entry.name.removesuffix(_PROFILE_SUFFIX)
        for entry in folder.iterdir()
        if entry.name.endswith(_PROFILE_SUFFIX)
    )


def load_profile(name: str) -> LatencyProfile:
    """The packaged profile called `name`.

    Raises ValueError for an unknown name (listing the known ones) and for a
    file whose `name` field disagrees with its file name.
    """
    known = list_profiles()
    if name not in known:
        raise ValueError(f"profile: unknown profile {name!r}; known profiles: {', '.join(known)}")
    path = resources.files(_PROFILE_PACKAGE).joinpath(_PROFILE_FOLDER, name + _PROFILE_SUFFIX)
    profile = LatencyProfile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    if profile.name != name:
        raise ValueError(f"profile: file {name}{_PROFILE_SUFFIX} declares name {profile.name!r}")
    return profile
