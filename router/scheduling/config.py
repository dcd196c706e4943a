"""The routing configuration: plugins, then per-stage profiles that reference them.

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

The shape follows llm-d's EndpointPickerConfig. A stage without a profile uses
`defaultProfile` (round-robin unless configured).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from triskel.common.api import ApiModel
from triskel.router.scheduling.plugin import Filter, Picker, PluginContext, Scorer
from triskel.router.scheduling.registry import PluginConfigError, PluginRegistry
from triskel.router.scheduling.scheduler import Profile, Scheduler
from triskel.router.scheduling.types import Stage


class PluginEntry(ApiModel):
    type: Annotated[str, Field(min_length=1)]
    name: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)

    @property
    def ref(self) -> str:
        return self.name or self.type


class PluginRef(ApiModel):
    plugin_ref: Annotated[str, Field(min_length=1)]
    # Only for scorers: how much this score counts in the total.
    weight: Annotated[float, Field(ge=0)] | None = None


class ProfileEntry(ApiModel):
    name: Stage | str
    plugins: Annotated[list[PluginRef], Field(min_length=1)]


class RoutingConfig(ApiModel):
    plugins: list[PluginEntry] = Field(default_factory=list)
    profiles: list[ProfileEntry] = Field(default_factory=list)
    # Profile for stages that have none of their own.
    default_profile: str | None = None

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


def build_scheduler(
    config: RoutingConfig, registry: PluginRegistry, context: PluginContext
) -> Scheduler:
    """Builds every plugin once and assembles the profiles; PluginConfigError on any fault."""
    plugins = {
        entry.ref: registry.build(entry.type, entry.ref, entry.parameters, context)
        for entry in config.plugins
    }
    profiles = {p.name: _profile(str(p.name), p.plugins, plugins) for p in config.profiles}
    by_stage = {stage: profiles[stage] for stage in Stage if stage in profiles}
    default = profiles[config.default_profile] if config.default_profile else None
    return Scheduler(by_stage, default)


def _profile(name: str, refs: list[PluginRef], plugins: dict[str, Any]) -> Profile:
    filters: list[Filter] = []
    scorers: list[tuple[Scorer, float]] = []
    pickers: list[Picker] = []
    for ref in refs:
        plugin = plugins[ref.plugin_ref]
        roles = 0
        if isinstance(plugin, Filter):
            filters.append(plugin)
            roles += 1
        if isinstance(plugin, Scorer):
            scorers.append((plugin, 1.0 if ref.weight is None else ref.weight))
            roles += 1
        if isinstance(plugin, Picker):
            pickers.append(plugin)
            roles += 1
        if ref.weight is not None and not isinstance(plugin, Scorer):
            raise PluginConfigError(
                f"profile {name}: plugin {ref.plugin_ref!r} is not a scorer; weight has no effect"
            )
        if roles == 0:
            raise PluginConfigError(f"profile {name}: plugin {ref.plugin_ref!r} cannot be used")
    if len(pickers) != 1:
        raise PluginConfigError(
            f"profile {name}: needs exactly one picker, has {len(pickers)}"
            + (f" ({', '.join(p.name for p in pickers)})" if pickers else "")
        )
    return Profile(name, tuple(filters), tuple(scorers), pickers[0])
