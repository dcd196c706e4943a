"""How the router serves requests: scheduling profiles, disaggregation, SLOs, retries.

The `routing:` section of a `triskel up` file; later the operator renders it from
the `RoutingPolicy` and `ServingGraph` resources.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from triskel.common.api import ApiModel
from triskel.router.scheduling.config import RoutingConfig, round_robin_config


class DisaggregationMode(StrEnum):
    # Every request prefills on a prefill worker (when the model has prefill workers).
    ALWAYS = "always"
    # Prefill on the decode worker when little of the prompt is uncached there.
    CONDITIONAL = "conditional"


class DisaggregationSpec(ApiModel):
    mode: DisaggregationMode = DisaggregationMode.ALWAYS
    # Conditional: prefill locally when the decode worker lacks fewer than this many
    # prompt tokens (Dynamo's default is 2,048 on GPUs; a KV transfer costs more than
    # recomputing a short suffix).
    max_local_prefill_tokens: Annotated[int, Field(ge=0)] = 512


class SloSpec(ApiModel):
    """Targets the SLO-aware plugins aim for when a request carries none."""

    ttft_ms: Annotated[float, Field(gt=0)] | None = None
    tpot_ms: Annotated[float, Field(gt=0)] | None = None


class AdmissionSpec(ApiModel):
    """The router's own queue: beyond `maxQueued` waiting requests, 429 with Retry-After."""

    max_in_flight: Annotated[int, Field(ge=1)] = 1024
    max_queued: Annotated[int, Field(ge=0)] = 4096


class RoutingSettings(RoutingConfig):
    """Scheduling plugins and profiles (the `RoutingConfig` fields) plus serving policy."""

    disaggregation: DisaggregationSpec = Field(default_factory=DisaggregationSpec)
    slo: SloSpec = Field(default_factory=SloSpec)
    admission: AdmissionSpec = Field(default_factory=AdmissionSpec)
    # Tries per stage when a worker fails before the request's first token there.
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 2

    def scheduling(self) -> RoutingConfig:
        """The scheduling part; round-robin for every stage when no profile is configured."""
        if not self.profiles:
            return round_robin_config()
        return RoutingConfig(
            plugins=self.plugins, profiles=self.profiles, default_profile=self.default_profile
        )
