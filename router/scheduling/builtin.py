"""The default plugin registry: every built-in plugin, registered by its type name."""

from __future__ import annotations

from types import ModuleType

from triskel.router.scheduling.plugins import (
    dualmap,
    dynamo_kv,
    hybrid_prefix,
    kv_utilization,
    least_load,
    max_score,
    precise_prefix,
    prefix_affinity,
    prefix_cache,
    queue_scorer,
    random_picker,
    round_robin,
    session_affinity,
    sglang_cache_aware,
    slo_aware,
)
from triskel.router.scheduling.registry import PluginRegistry

BUILTIN_PLUGINS: tuple[ModuleType, ...] = (
    round_robin,
    random_picker,
    max_score,
    least_load,
    queue_scorer,
    kv_utilization,
    session_affinity,
    slo_aware,
    prefix_cache,
    precise_prefix,
    hybrid_prefix,
    prefix_affinity,
    dualmap,
    dynamo_kv,
    sglang_cache_aware,
)


def default_registry() -> PluginRegistry:
    """A fresh registry with every built-in plugin (a new one per router, never shared)."""
    registry = PluginRegistry()
    for module in BUILTIN_PLUGINS:
        registry.register(module.TYPE_NAME, module.create, module.SUMMARY)
    return registry
