"""Routing configuration data: scheduling plugins and profiles, and serving policy.

Shared by the router (which builds schedulers from it), `triskel up` files, and the
`RoutingPolicy` / `ServingGraph` custom resources whose CRD schemas are generated
from these models. The shape of the scheduling part follows llm-d's
EndpointPickerConfig:

    routing:
      plugins:
        - {type: prefix-cache-scorer, name: prefix}
        - {type: queue-scorer}
        - {type: max-score-picker}
      profiles:
        - name: prefill                      # a stage: encode | prefill | decode | unified
          plugins:
            - {pluginRef: prefix, weight: 3}
            - {pluginRef: queue-scorer, weight: 2}
            - {pluginRef: max-score-picker}

A stage without a profile uses `defaultProfile` (round-robin unless configured).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, model_validator

from triskel.common.api import ApiModel
from triskel.common.semantic_api import CacheSpec, SemanticSpec


class PluginEntry(ApiModel):
    type: Annotated[str, Field(min_length=1)]
    """The plugin's registered type (`dualmap`, `queue-scorer`, `max-score-picker`...)."""
    name: str | None = None
    """What profiles call it (`pluginRef`); defaults to `type`."""
    parameters: dict[str, Any] = Field(
        default_factory=dict, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    """Free-form here: each plugin type parses (and refuses) its own parameters."""

    @property
    def ref(self) -> str:
        return self.name or self.type


class PluginRef(ApiModel):
    plugin_ref: Annotated[str, Field(min_length=1)]
    """The `name` (or `type`) of a plugin in `plugins`."""
    weight: Annotated[float, Field(ge=0)] | None = None
    """Only for scorers: how much this score counts in the total."""


class ProfileEntry(ApiModel):
    name: Annotated[str, Field(min_length=1)]
    """A stage (encode | prefill | decode | unified) or a name for `defaultProfile`."""
    plugins: Annotated[list[PluginRef], Field(min_length=1)]
    """Filters, then weighted scorers, then one picker."""


class RoutingConfig(ApiModel):
    plugins: list[PluginEntry] = Field(default_factory=list)
    profiles: list[ProfileEntry] = Field(default_factory=list)
    default_profile: str | None = None
    """Profile for stages that have none of their own."""

    @model_validator(mode="after")
    def _check_refs(self) -> RoutingConfig:
        names = [entry.ref for entry in self.plugins]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"plugin names used twice: {', '.join(duplicates)}")
        profiles = [p.name for p in self.profiles]
        for profile in self.profiles:
            for ref in profile.plugins:
                if ref.plugin_ref not in names:
                    raise ValueError(
                        f"profile {profile.name}: pluginRef {ref.plugin_ref!r} names no plugin; "
                        f"defined: {', '.join(names) or 'none'}"
                    )
        if self.default_profile is not None and self.default_profile not in profiles:
            raise ValueError(f"defaultProfile {self.default_profile!r} names no profile")
        return self


def round_robin_config() -> RoutingConfig:
    """What a router runs with no routing configuration: round-robin for every stage."""
    return RoutingConfig.model_validate(
        {
            "plugins": [{"type": "round-robin-picker"}],
            "profiles": [{"name": "default", "plugins": [{"pluginRef": "round-robin-picker"}]}],
            "defaultProfile": "default",
        }
    )


class DisaggregationMode(StrEnum):
    # Every request prefills on a prefill worker (when the model has prefill workers).
    ALWAYS = "always"
    # Prefill on the decode worker when little of the prompt is uncached there.
    CONDITIONAL = "conditional"
    # Per request, whichever of the two is predicted better against the SLO: a local
    # prefill's cost to the running decodes weighed against a prefill worker's queue.
    ADAPTIVE = "adaptive"
    # Every request prefills on its decode worker; prefill pools stand idle (e.g. while
    # the planner moves their replicas to decode).
    NEVER = "never"


_DEFAULT_MAX_LOCAL_PREFILL_TOKENS = 512


class DisaggregationSpec(ApiModel):
    mode: DisaggregationMode = DisaggregationMode.ALWAYS
    """always, never, conditional (see maxLocalPrefillTokens) or adaptive (per request,
    local prefill when it is predicted better against the TTFT and TPOT SLO, counting
    what it costs the decodes running there)."""
    max_local_prefill_tokens: Annotated[int, Field(ge=0)] = _DEFAULT_MAX_LOCAL_PREFILL_TOKENS
    """Conditional only: prefill locally when the decode worker lacks fewer than this
    many prompt tokens (Dynamo's default is 2,048 on GPUs; a KV transfer costs more than
    recomputing a short suffix)."""

    @model_validator(mode="after")
    def _threshold_is_conditional(self) -> DisaggregationSpec:
        # Changed with another mode it would do nothing: say so rather than ignore it.
        # (Equal to the default passes: Kubernetes fills the default into every object.)
        is_changed = self.max_local_prefill_tokens != _DEFAULT_MAX_LOCAL_PREFILL_TOKENS
        if is_changed and self.mode is not DisaggregationMode.CONDITIONAL:
            raise ValueError(
                f"maxLocalPrefillTokens applies to mode conditional only, not {self.mode}"
            )
        return self


class PrefillHoldSpec(ApiModel):
    """The router's hold of prefills for busy workers, rebalanced to each request's second
    candidate when a hotspot forms (DualMap's; docs/routing.md)."""

    max_per_worker: Annotated[int, Field(ge=0, le=4096)] = 0
    """Prefills held at most per worker while it is busy (beyond, they are sent); 0: no
    hold, every prefill is sent at once."""


class SloSpec(ApiModel):
    """Targets the SLO-aware plugins aim for when a request carries none."""

    ttft_ms: Annotated[float, Field(gt=0)] | None = None
    tpot_ms: Annotated[float, Field(gt=0)] | None = None


class AdmissionSpec(ApiModel):
    """The router's own queue: beyond `maxQueued` waiting requests, 429 with Retry-After."""

    max_in_flight: Annotated[int, Field(ge=1)] = 1024
    max_queued: Annotated[int, Field(ge=0)] = 4096


class TimeoutsSpec(ApiModel):
    """Bounds on the router's calls to workers (docs/routing.md, "Failures"): a worker that
    hangs or goes silent ends its requests with a retriable error, never hangs them."""

    encode_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    """One Encode call: all of a request's images."""
    prefill_s: Annotated[float, Field(gt=0, le=3600)] = 300.0
    """One Prefill call, its wait in the worker's queue included."""
    decode_s: Annotated[float, Field(gt=0, le=86400)] = 1800.0
    """A whole decode stream: long generations on slow profiles need room."""
    token_idle_s: Annotated[float, Field(ge=1, le=3600)] = 60.0
    """Longest pause between two events of a decode stream once its first token arrived
    (before it the worker may queue or prefill the request: `decodeS` bounds that)."""
    kv_hold_ms: Annotated[int, Field(ge=1000, le=600_000)] = 30_000
    """How long a prefill worker keeps a prompt's KV waiting for the decode worker's pull."""
    worker_silence_s: Annotated[float, Field(ge=1, le=600)] = 5.0
    """A worker whose load reports (every 50 ms) stop for this long is left out of picks
    and its calls in flight end with a retriable error; it returns when they resume."""


class RoutingSettings(RoutingConfig):
    """Scheduling plugins and profiles (the `RoutingConfig` fields) plus serving policy."""

    disaggregation: DisaggregationSpec = Field(default_factory=DisaggregationSpec)
    prefill_hold: PrefillHoldSpec = Field(default_factory=PrefillHoldSpec)
    slo: SloSpec = Field(default_factory=SloSpec)
    admission: AdmissionSpec = Field(default_factory=AdmissionSpec)
    # Tries per stage when a worker fails before the request's first token there.
    max_attempts: Annotated[int, Field(ge=1, le=10)] = 2
    # Times one answer may continue on another worker after its decode worker failed
    # mid-answer (request migration, docs/routing.md "Failures"); 0: the answer ends there.
    migration_limit: Annotated[int, Field(ge=0, le=10)] = 3
    timeouts: TimeoutsSpec = Field(default_factory=TimeoutsSpec)
    # Semantic routing for requests naming the alias (`model: auto`), and the semantic
    # cache in front of the workers (docs/semantic.md).
    semantic: SemanticSpec | None = None
    cache: CacheSpec | None = None

    def scheduling(self) -> RoutingConfig:
        """The scheduling part; round-robin for every stage when no profile is configured."""
        if not self.profiles:
            return round_robin_config()
        return RoutingConfig(
            plugins=self.plugins, profiles=self.profiles, default_profile=self.default_profile
        )
