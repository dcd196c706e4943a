"""The shape of a simulated cluster, and building its instances.

    unified:        num_unified instances, each prefills and decodes its requests
    disaggregated:  num_prefill prefill instances + num_decode decode instances

Every instance runs the same latency profile; a KV capacity override lets a run
study cache pressure without writing a new profile.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from triskel.common.api import Role
from triskel.common.profiles import LatencyProfile, list_profiles, load_profile
from triskel.router.scheduling.producers.kv_index import KvBlockIndex
from triskel.router.scheduling.types import LOAD_REPORT_INTERVAL_MS
from triskel.simulator.cache_view import engine_caches_index
from triskel.simulator.instance import SimInstance
from triskel.workers.engine.core import EngineConfig, EngineCore

DEFAULT_PROFILE = "llama-3.1-8b-h100"


class ClusterShape(BaseModel):
    """How many instances of each role; either unified ones or prefill + decode ones."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    num_unified: Annotated[int, Field(ge=0)] = 0
    num_prefill: Annotated[int, Field(ge=0)] = 0
    num_decode: Annotated[int, Field(ge=0)] = 0
    profile: Annotated[str, Field(min_length=1)] = DEFAULT_PROFILE
    # Overrides the profile's KV capacity per instance (tokens); None keeps it.
    kv_capacity_tokens: Annotated[int, Field(gt=0)] | None = None
    # Each instance's host-memory KV tier (tokens; `workers.engine.host_tier`); 0: none.
    host_kv_capacity_tokens: Annotated[int, Field(ge=0)] = 0
    # How often instances report their load to the router, as live workers do; picks
    # read the last report (0: picks read each engine as it is, with no lag).
    load_report_interval_ms: Annotated[float, Field(ge=0)] = LOAD_REPORT_INTERVAL_MS

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, name: str) -> str:
        known = list_profiles()
        if name not in known:
            raise ValueError(f"unknown profile {name!r}; known profiles: {', '.join(known)}")
        return name

    @model_validator(mode="after")
    def _check_roles(self) -> ClusterShape:
        is_split = self.num_prefill > 0 or self.num_decode > 0
        if self.num_unified > 0 and is_split:
            raise ValueError(
                f"cluster: num_unified ({self.num_unified}) cannot be combined with "
                f"num_prefill ({self.num_prefill}) / num_decode ({self.num_decode})"
            )
        if not is_split and self.num_unified == 0:
            raise ValueError("cluster: needs num_unified > 0 or num_prefill and num_decode > 0")
        if self.host_kv_capacity_tokens and load_profile(self.profile).host_link is None:
            raise ValueError(
                f"host_kv_capacity_tokens: profile {self.profile} has no host_link to load "
                "a host tier over"
            )
        if is_split and (self.num_prefill == 0 or self.num_decode == 0):
            raise ValueError(
                f"cluster: a disaggregated cluster needs both roles, got num_prefill "
                f"({self.num_prefill}) and num_decode ({self.num_decode})"
            )
        return self

    @property
    def is_disaggregated(self) -> bool:
        return self.num_decode > 0

    def total_kv_capacity_tokens(self) -> int:
        """KV tokens all instances hold together, in GPU memory (the override, else the
        profile's) and in their host tiers."""
        per_instance = self.kv_capacity_tokens or load_profile(self.profile).kv_capacity_tokens
        per_instance += self.host_kv_capacity_tokens
        return per_instance * (self.num_unified + self.num_prefill + self.num_decode)


@dataclass(frozen=True, slots=True)
class SimCluster:
    """The instances, in a fixed order (unified, then prefill, then decode)."""

    profile: LatencyProfile
    instances: tuple[SimInstance, ...]

    def of(self, role: Role) -> tuple[SimInstance, ...]:
        return tuple(i for i in self.instances if i.role is role)

    def kv_index(self) -> KvBlockIndex:
        """The router's KV index over these instances' caches (see `cache_view`)."""
        return engine_caches_index({i.worker_id: i.core for i in self.instances})


def engine_config(shape: ClusterShape) -> EngineConfig:
    """The engine every instance of `shape` runs."""
    profile = load_profile(shape.profile)
    config = EngineConfig.from_profile(
        profile,
        kv_capacity_tokens=shape.kv_capacity_tokens,
        host_kv_capacity_tokens=shape.host_kv_capacity_tokens,
    )
    # The event loop reads a request's first token and its finish, nothing between.
    return dataclasses.replace(config, streams_tokens=False)


def build_cluster(shape: ClusterShape) -> SimCluster:
    """Fresh idle instances for `shape`."""
    config = engine_config(shape)
    counts = (
        (Role.UNIFIED, shape.num_unified),
        (Role.PREFILL, shape.num_prefill),
        (Role.DECODE, shape.num_decode),
    )
    instances = tuple(
        SimInstance(f"{role}-{n}", role, EngineCore(config))
        for role, count in counts
        for n in range(count)
    )
    return SimCluster(config.profile, instances)
