"""Builders for scheduling tests: endpoints and requests with only the fields a test cares about."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from triskel.common.hashing import hash_blocks
from triskel.common.profiles import LatencyProfile
from triskel.common.routing_api import RoutingConfig
from triskel.router.scheduling.config import build_scheduler
from triskel.router.scheduling.plugin import PluginContext
from triskel.router.scheduling.registry import PluginRegistry
from triskel.router.scheduling.scheduler import Scheduler
from triskel.router.scheduling.types import (
    ActiveLoad,
    Endpoint,
    SchedulingRequest,
    Stage,
    WorkerLoad,
)


def endpoint(
    worker_id: str,
    *,
    waiting: int = 0,
    running: int = 0,
    kv_usage: float = 0.0,
    tokens_in_flight: int = 0,
    num_kv_blocks: int = 0,
    active: ActiveLoad | None = None,
    profile: LatencyProfile | None = None,
    model: str = "m",
    block_size: int = 16,
) -> Endpoint:
    """An endpoint whose worker reported the given load (`active`: the router's own count)."""
    load = WorkerLoad(
        num_waiting_requests=waiting,
        num_running_requests=running,
        kv_usage=kv_usage,
        num_tokens_in_flight=tokens_in_flight,
        num_kv_blocks=num_kv_blocks,
    )
    return Endpoint(
        worker_id=worker_id,
        model=model,
        block_size_tokens=block_size,
        load=load,
        active=active if active is not None else ActiveLoad(),
        profile=profile,
    )


def request(
    request_id: str = "r",
    *,
    model: str = "m",
    stage: Stage = Stage.PREFILL,
    token_ids: Sequence[int] = tuple(range(64)),
    headers: Mapping[str, str] | None = None,
    max_tokens: int = 16,
    block_size: int = 16,
    ttft_slo_ms: float | None = None,
    tpot_slo_ms: float | None = None,
) -> SchedulingRequest:
    """A request whose block hashes are computed as the router does (full blocks only)."""
    return SchedulingRequest(
        request_id=request_id,
        model=model,
        stage=stage,
        token_ids=list(token_ids),
        block_hashes=hash_blocks(token_ids, block_size, model),
        max_tokens=max_tokens,
        headers=dict(headers) if headers is not None else {},
        ttft_slo_ms=ttft_slo_ms,
        tpot_slo_ms=tpot_slo_ms,
    )


def scheduler_from(
    plugin_modules: Sequence[ModuleType],
    routing: Mapping[str, Any],
    context: PluginContext | None = None,
) -> Scheduler:
    """A Scheduler for `routing` (the `routing:` block's shape) over a local registry.

    Only `plugin_modules` are registered (each exposes TYPE_NAME, create, SUMMARY),
    so a plugin's test does not depend on every other built-in plugin.
    """
    registry = PluginRegistry()
    for module in plugin_modules:
        registry.register(module.TYPE_NAME, module.create, module.SUMMARY)
    config = RoutingConfig.model_validate(dict(routing))
    return build_scheduler(config, registry, context if context is not None else PluginContext())
