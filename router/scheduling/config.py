"""Builds a `Scheduler` from the routing configuration (`triskel.common.routing_api`)."""

from __future__ import annotations

from typing import Any

from triskel.common.routing_api import PluginRef, RoutingConfig
from triskel.router.scheduling.plugin import Filter, Picker, PluginContext, Scorer
from triskel.router.scheduling.registry import PluginConfigError, PluginRegistry
from triskel.router.scheduling.scheduler import Profile, Scheduler
from triskel.router.scheduling.types import Stage


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
    return Scheduler(by_stage, default, history=context.history)


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
